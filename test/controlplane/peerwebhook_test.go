package controlplane

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// testWebhook is a small admission webhook served by the test process itself
// (a peer of the webhook under test, never a stand-in for it), behind its own
// Service and EndpointSlice at addr.
type testWebhook struct {
	calls atomic.Int64
}

// startTestWebhook serves review at ip:port with a certificate for
// name.<webhook namespace>.svc from the fixture's CA, and exposes it as the
// Service name. It stops when the test ends.
func startTestWebhook(t *testing.T, name, ip string, port int32,
	review func(r *http.Request, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse) *testWebhook {
	t.Helper()
	cert, err := issueServing(fx.ca, name, webhookNamespace)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWebhook{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mutate", func(w http.ResponseWriter, r *http.Request) {
		tw.calls.Add(1)
		var in admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Request == nil {
			http.Error(w, "bad AdmissionReview", http.StatusBadRequest)
			return
		}
		resp := review(r, in.Request)
		if resp == nil {
			return // the handler gave up (the API server went away)
		}
		resp.UID = in.Request.UID
		out := admissionv1.AdmissionReview{TypeMeta: in.TypeMeta, Response: resp}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(int(port))))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	srv.TLSConfig = tlsServerConfig(pair)
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })

	exposeForTest(t, name, ip, port)
	return tw
}
