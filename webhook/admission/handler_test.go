package admission

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ai-webhook/ai-webhook/webhook/metrics"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
	"github.com/ai-webhook/ai-webhook/webhook/testpki"
)

// tlsServer serves h over real TLS with a certificate for the Service name the API server dials.
func tlsServer(t *testing.T, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	ca, err := testpki.NewCA("ai-webhook test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Serving("ai-webhook.ai-webhook.svc", "ai-webhook.ai-webhook.svc")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "ai-webhook.ai-webhook.svc"}}}
	return srv, client
}

func newHandler(t *testing.T) *Handler {
	set, err := profile.Parse(profile.Examples, profile.DefaultDomain)
	if err != nil {
		t.Fatal(err)
	}
	return &Handler{Profiles: func() *profile.Set { return set }, Keys: profile.KeysFor(profile.DefaultDomain),
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: metrics.New()}
}

func podJSON(t *testing.T, labels map[string]string) []byte {
	pod := corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "train-", Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pytorch", Image: "img",
			Env: []corev1.EnvVar{{Name: "NCCL_DEBUG", Value: "INFO"}}}}}}
	b, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reviewJSON(t *testing.T, mutate func(r *admissionv1.AdmissionReview)) []byte {
	r := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("7f0b2c1e-0000-4000-8000-000000000001"),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "ml",
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: podJSON(t, map[string]string{"ai.example.com/profile": "pytorch-training"})},
		},
	}
	if mutate != nil {
		mutate(&r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t *testing.T, client *http.Client, url, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestMutatesAPodOverTLS(t *testing.T) {
	h := newHandler(t)
	srv, client := tlsServer(t, h)
	resp, body := post(t, client, srv.URL+"/mutate?timeout=10s", "application/json", reviewJSON(t, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		t.Fatal(err)
	}
	r := review.Response
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" || review.Request != nil {
		t.Fatalf("response review must be v1 AdmissionReview without the request: %s", body)
	}
	if r.UID != "7f0b2c1e-0000-4000-8000-000000000001" || !r.Allowed || r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("bad response: %+v", r)
	}
	patch, err := jsonpatchapply.DecodePatch(r.Patch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(podJSON(t, map[string]string{"ai.example.com/profile": "pytorch-training"}))
	if err != nil {
		t.Fatalf("patch does not apply: %v", err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(out, &pod); err != nil {
		t.Fatal(err)
	}
	if *pod.Spec.RuntimeClassName != "nvidia" || !strings.HasPrefix(pod.Annotations["ai.example.com/injected"], "pytorch-training@") {
		t.Fatalf("profile not applied: %s", out)
	}
	// The audit log records the profile stamp and what happened, as short values.
	a := r.AuditAnnotations
	if !strings.HasPrefix(a["profile"], "pytorch-training@") || a["skipped"] != "1" || a["enforced"] != "0" || a["applied"] == "" || a["applied"] == "0" {
		t.Fatalf("audit annotations %v, want the stamp and applied/skipped/enforced counts", a)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "NCCL_DEBUG") {
		t.Fatalf("want one warning about the user's NCCL_DEBUG, got %q", r.Warnings)
	}
	if got := testutil.ToFloat64(h.Metrics.RequestsTotal.WithLabelValues(metrics.ResultMutated)); got != 1 {
		t.Fatalf("mutated requests metric = %v", got)
	}
	if got := testutil.ToFloat64(h.Metrics.SkippedTotal.WithLabelValues("pytorch-training", "env")); got != 1 {
		t.Fatalf("skipped items metric = %v", got)
	}
}

// TestAnswers covers every kind of input: bad HTTP is an HTTP 4xx; a well-formed review gets
// an AdmissionResponse that keeps the UID.
func TestAnswers(t *testing.T) {
	const uid = "7f0b2c1e-0000-4000-8000-000000000001"
	cases := []struct {
		name        string
		method      string
		contentType string
		body        []byte
		query       string
		profiles    func() *profile.Set // nil: the examples
		wantStatus  int
		wantAllowed bool
		wantCode    int32 // AdmissionResponse result code when denied
		wantReason  metav1.StatusReason
		wantText    string // in the HTTP body or the response message
		wantPatch   bool
	}{
		{name: "GET is not allowed", method: http.MethodGet, wantStatus: http.StatusMethodNotAllowed},
		{name: "wrong content type", contentType: "text/plain", body: reviewJSON(t, nil), wantStatus: http.StatusUnsupportedMediaType},
		{name: "content type with charset is fine", contentType: "application/json; charset=utf-8", body: reviewJSON(t, nil), wantStatus: 200, wantAllowed: true, wantPatch: true},
		{name: "empty body", body: []byte("  "), wantStatus: http.StatusBadRequest, wantText: "empty body"},
		{name: "oversized body", body: bytes.Repeat([]byte("x"), MaxBodyBytes+1), wantStatus: http.StatusRequestEntityTooLarge},
		{name: "malformed JSON", body: []byte(`{"apiVersion":`), wantStatus: http.StatusBadRequest, wantText: "malformed"},
		{name: "a UID longer than a UUID is refused, not echoed", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) { r.Request.UID = types.UID(strings.Repeat("u", 200)) }),
			wantStatus: http.StatusBadRequest, wantText: "expected a UUID"},
		{name: "review without request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), wantStatus: http.StatusBadRequest, wantText: "no request"},
		{name: "v1beta1 review", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) { r.APIVersion = "admission.k8s.io/v1beta1" }), wantStatus: http.StatusBadRequest, wantText: "expected apiVersion"},
		{name: "not a pod", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) {
			r.Request.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
		}), wantStatus: 200, wantAllowed: true},
		{name: "not a pod, with an object that is no Pod", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) {
			r.Request.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
			r.Request.Object.Raw = []byte(`{"spec":{"replicas":3,"containers":"not a list"}}`)
		}), wantStatus: 200, wantAllowed: true},
		{name: "pod subresource", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) { r.Request.SubResource = "status" }), wantStatus: 200, wantAllowed: true},
		{name: "DELETE with no object", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) {
			r.Request.Operation, r.Request.Object = admissionv1.Delete, runtime.RawExtension{}
		}), wantStatus: 200, wantAllowed: true},
		{name: "CREATE with no object", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) { r.Request.Object = runtime.RawExtension{} }),
			wantStatus: 200, wantCode: 400, wantReason: metav1.StatusReasonBadRequest, wantText: "no Pod object"},
		{name: "malformed pod", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + uid + `","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"spec":{"containers":"nope"}}}}`),
			wantStatus: 200, wantCode: 400, wantReason: metav1.StatusReasonBadRequest, wantText: "cannot decode the Pod"},
		{name: "unknown profile is denied with the known names", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) {
			r.Request.Object.Raw = podJSON(t, map[string]string{"ai.example.com/profile": "gpt"})
		}), wantStatus: 200, wantCode: 400, wantReason: metav1.StatusReasonBadRequest, wantText: "known profiles: llm-inference, llm-inference-oci-model, notebook, pytorch-training"},
		{name: "opted out", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) {
			r.Request.Object.Raw = podJSON(t, map[string]string{"ai.example.com/profile": "notebook"})
			r.Request.Object.Raw = bytes.Replace(r.Request.Object.Raw, []byte(`"metadata":{`), []byte(`"metadata":{"annotations":{"ai.example.com/inject":"false"},`), 1)
		}), wantStatus: 200, wantAllowed: true},
		{name: "dry run is mutated the same way", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) { dry := true; r.Request.DryRun = &dry }),
			wantStatus: 200, wantAllowed: true, wantPatch: true},
		// The webhook's own failures are HTTP 5xx, so the API server applies failurePolicy; the
		// body still answers with the UID and says what failed.
		{name: "profiles not loaded", body: reviewJSON(t, nil), profiles: func() *profile.Set { return nil }, wantStatus: 503, wantReason: metav1.StatusReasonServiceUnavailable, wantText: "no profiles loaded"},
		{name: "timeout already spent", body: reviewJSON(t, nil), query: "?timeout=1ns", wantStatus: 504, wantReason: metav1.StatusReasonTimeout, wantText: "timeout passed"},
		{name: "panic keeps the UID", body: reviewJSON(t, nil), profiles: func() *profile.Set { panic("boom") }, wantStatus: 500, wantReason: metav1.StatusReasonInternalError, wantText: "internal error"},
		{name: "UPDATE is left alone", body: reviewJSON(t, func(r *admissionv1.AdmissionReview) { r.Request.Operation = admissionv1.Update }), wantStatus: 200, wantAllowed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t)
			if tc.profiles != nil {
				h.Profiles = tc.profiles
			}
			srv, client := tlsServer(t, h)
			method, ct := tc.method, tc.contentType
			if method == "" {
				method = http.MethodPost
			}
			if ct == "" {
				ct = "application/json"
			}
			req, _ := http.NewRequest(method, srv.URL+"/mutate"+tc.query, bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", ct)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if resp.StatusCode != 200 {
				var review admissionv1.AdmissionReview
				if resp.StatusCode >= 500 {
					if err := json.Unmarshal(body, &review); err != nil || review.Response == nil || review.Response.UID != uid ||
						review.Response.Allowed || !strings.Contains(review.Response.Result.Message, tc.wantText) ||
						review.Response.Result.Reason != tc.wantReason || review.Response.Result.Code != int32(resp.StatusCode) {
						t.Fatalf("a 5xx must carry a review with the UID, reason %q and code %d saying %q: %s", tc.wantReason, resp.StatusCode, tc.wantText, body)
					}
				} else if !strings.Contains(string(body), tc.wantText) {
					t.Fatalf("body %q does not say %q", body, tc.wantText)
				}
				if tc.name == "panic keeps the UID" && testutil.ToFloat64(h.Metrics.PanicsTotal) != 1 {
					t.Fatal("panic not counted")
				}
				return
			}
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &review); err != nil {
				t.Fatal(err)
			}
			r := review.Response
			if r == nil || r.UID != uid {
				t.Fatalf("response must keep the UID: %s", body)
			}
			if r.Allowed != tc.wantAllowed || (r.Patch != nil) != tc.wantPatch {
				t.Fatalf("allowed=%v patch=%v, want %v %v: %s", r.Allowed, r.Patch != nil, tc.wantAllowed, tc.wantPatch, body)
			}
			if !r.Allowed && (r.Result == nil || r.Result.Code != tc.wantCode || r.Result.Reason != tc.wantReason || !strings.Contains(r.Result.Message, tc.wantText)) {
				t.Fatalf("denial %+v, want code %d, reason %q and %q", r.Result, tc.wantCode, tc.wantReason, tc.wantText)
			}
		})
	}
}
