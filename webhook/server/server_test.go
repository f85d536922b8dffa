package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
	"github.com/ai-webhook/ai-webhook/webhook/testpki"
)

const serviceName = "ai-webhook.ai-webhook.svc"

type fixture struct {
	dir    string
	cfg    Config
	ca     *testpki.CA
	srv    *Server
	addr   string
	client *http.Client
	stop   context.CancelFunc
	done   chan error
	logs   syncBuffer
}

// syncBuffer collects the server's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeAtomic replaces a file the way the kubelet updates a mounted Secret: write aside, rename.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) issue(t *testing.T) {
	t.Helper()
	leaf, err := f.ca.Serving(serviceName, serviceName)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, f.cfg.KeyFile, leaf.KeyPEM)
	writeAtomic(t, f.cfg.CertFile, leaf.CertPEM)
}

func newFixture(t *testing.T, delay time.Duration) *fixture {
	t.Helper()
	dir := t.TempDir()
	ca, err := testpki.NewCA("ai-webhook test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.Listen, cfg.CertFile, cfg.KeyFile = "127.0.0.1:0", filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cfg.ProfilesFile, cfg.Domain, cfg.ReloadInterval = filepath.Join(dir, "profiles.yaml"), "ai.example.com", 20*time.Millisecond
	cfg.ShutdownDelay, cfg.ReadTimeout, cfg.ShutdownTimeout = delay, 2*time.Second, 8*time.Second
	f := &fixture{dir: dir, ca: ca, cfg: cfg}
	f.issue(t)
	writeAtomic(t, f.cfg.ProfilesFile, profile.Examples)
	return f
}

// start runs the server on f.cfg until the test ends. With a MetricsListen the test listens
// there itself, so that a port 0 has an address the test can ask.
func (f *fixture) start(t *testing.T) {
	t.Helper()
	var err error
	if f.srv, err = New(f.cfg, slog.New(slog.NewJSONHandler(&f.logs, nil))); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", f.cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.MetricsListen != "" {
		if f.srv.metricsLn, err = net.Listen("tcp", f.cfg.MetricsListen); err != nil {
			t.Fatal(err)
		}
	}
	f.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	f.stop, f.done = cancel, make(chan error, 1)
	go func() { f.done <- f.srv.Run(ctx, ln) }()
	f.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool, ServerName: serviceName}}}
	t.Cleanup(func() { cancel(); <-f.done })
}

func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := f.client.Get("https://" + f.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// servedSerial does a fresh handshake and returns the serial of the certificate served.
func (f *fixture) servedSerial(t *testing.T) string {
	t.Helper()
	conn, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.ca.Pool, ServerName: serviceName})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func fileSerial(t *testing.T, path string) string {
	b, _ := os.ReadFile(path)
	block, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// eventually polls cond until it holds; reloads are asynchronous.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEndpoints(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ok", "/metrics": "ai_webhook_profiles_loaded 5"} {
		code, body := f.get(t, path)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %q, want 200 with %q", path, code, body, want)
		}
	}
}

func TestOnlyHTTP1AndTLS12Plus(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	conn, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.ca.Pool, ServerName: serviceName, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p == "h2" {
		t.Fatalf("negotiated %q: the API server speaks HTTP/1.1 to webhooks", p)
	}
	conn.Close()
	if _, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.ca.Pool, ServerName: serviceName, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
}

func TestCertificateRotationIsServedWithoutRestart(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	before := f.servedSerial(t)
	f.issue(t)
	want := fileSerial(t, f.cfg.CertFile)
	if want == before {
		t.Fatal("test did not change the certificate")
	}
	eventually(t, "new certificate served", func() bool { return f.servedSerial(t) == want })
	if got := testutil.ToFloat64(f.srv.Metrics().ReloadsTotal.WithLabelValues("certificate", "success")); got < 2 {
		t.Fatalf("certificate loads = %v, want >= 2", got)
	}
}

func TestMismatchedKeyPairKeepsTheOldCertificate(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	before := f.servedSerial(t)
	leaf, _ := f.ca.Serving(serviceName, serviceName)
	writeAtomic(t, f.cfg.CertFile, leaf.CertPEM) // new cert, old key: half of a rotation
	eventually(t, "reload error counted", func() bool {
		return testutil.ToFloat64(f.srv.Metrics().ReloadsTotal.WithLabelValues("certificate", "error")) >= 1
	})
	if got := f.servedSerial(t); got != before {
		t.Fatal("a mismatched pair replaced the working certificate")
	}
}

func TestProfileReload(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	m := f.srv.Metrics()
	writeAtomic(t, f.cfg.ProfilesFile, []byte("profiles:\n- name: BAD_NAME\n"))
	eventually(t, "invalid profiles counted", func() bool {
		return testutil.ToFloat64(m.ReloadsTotal.WithLabelValues("profiles", "error")) == 1
	})
	if n := f.srv.profiles.current.Load().Len(); n != 5 || testutil.ToFloat64(m.LastReloadError.WithLabelValues("profiles")) != 1 {
		t.Fatalf("invalid file must keep the previous 5 profiles, have %d", n)
	}
	if code, _ := f.get(t, "/readyz"); code != 200 {
		t.Fatal("a bad reload must not make a serving replica unready")
	}
	writeAtomic(t, f.cfg.ProfilesFile, []byte("profiles:\n- name: only-one\n  container:\n    env: [{name: A, value: b}]\n"))
	eventually(t, "new profiles in use", func() bool {
		_, ok := f.srv.profiles.current.Load().Get("only-one")
		return ok
	})
	if testutil.ToFloat64(m.LastReloadError.WithLabelValues("profiles")) != 0 {
		t.Fatal("error gauge not cleared after a good reload")
	}
}

func TestFailureClearsWhenTheFileComesBack(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	m := f.srv.Metrics()
	good, _ := os.ReadFile(f.cfg.ProfilesFile)
	os.Remove(f.cfg.ProfilesFile) // e.g. caught between the kubelet's rename and link
	eventually(t, "read failure flagged", func() bool { return testutil.ToFloat64(m.LastReloadError.WithLabelValues("profiles")) == 1 })
	writeAtomic(t, f.cfg.ProfilesFile, good) // the same content as before
	eventually(t, "failure cleared", func() bool { return testutil.ToFloat64(m.LastReloadError.WithLabelValues("profiles")) == 0 })
}

func TestStartupRefusesInvalidFiles(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, f *fixture)
		want  string
	}{
		{"invalid profile names the profile and field", func(t *testing.T, f *fixture) {
			writeAtomic(t, f.cfg.ProfilesFile, []byte("profiles:\n- name: train\n  derived:\n    shm: {fraction: 2}\n"))
		}, "profiles[train].derived.shm.fraction"},
		{"unknown field", func(t *testing.T, f *fixture) {
			writeAtomic(t, f.cfg.ProfilesFile, []byte("profiles:\n- name: train\n  contianer: {}\n"))
		}, `unknown field "profiles[0].contianer"`},
		{"missing certificate", func(t *testing.T, f *fixture) { os.Remove(f.cfg.CertFile) }, "certificate"},
		{"key that does not match", func(t *testing.T, f *fixture) {
			leaf, _ := f.ca.Serving(serviceName, serviceName)
			writeAtomic(t, f.cfg.KeyFile, leaf.KeyPEM)
		}, "private key does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 0)
			tc.setup(t, f)
			_, err := New(f.cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// TestGracefulShutdown: after the stop signal readiness fails at once, requests are still
// answered during the delay with keep-alive off, a request in flight when the server stops
// accepting is finished, and Run returns cleanly.
func TestGracefulShutdown(t *testing.T) {
	f := newFixture(t, 300*time.Millisecond)
	f.start(t)
	// A review whose body arrives in two parts, the second after shutdown has begun.
	review := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"in-flight",` +
		`"resource":{"version":"v1","resource":"pods"},"operation":"CREATE",` +
		`"object":{"metadata":{"labels":{"ai.example.com/profile":"notebook"}},"spec":{"containers":[{"name":"notebook","image":"i"}]}}}}`)
	pr, pw := io.Pipe()
	inFlight := make(chan string, 1)
	go func() {
		resp, err := f.client.Post("https://"+f.addr+"/mutate", "application/json", pr)
		if err != nil {
			inFlight <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		inFlight <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	if _, err := pw.Write(review[:40]); err != nil {
		t.Fatal(err)
	}
	if code, _ := f.get(t, "/readyz"); code != 200 {
		t.Fatal("not ready")
	}
	f.stop()
	eventually(t, "readyz fails while draining", func() bool { code, _ := f.get(t, "/readyz"); return code == 503 })
	resp, err := f.client.Get("https://" + f.addr + "/healthz")
	if err != nil {
		t.Fatalf("requests must still be answered while draining: %v", err)
	}
	resp.Body.Close()
	if !resp.Close {
		t.Fatal("responses while draining must close the connection")
	}
	time.Sleep(400 * time.Millisecond) // past the delay: the server now waits for active requests
	if _, err := pw.Write(review[40:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if got := <-inFlight; !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"uid":"in-flight"`) || !strings.Contains(got, `"patch"`) {
		t.Fatalf("the request in flight at shutdown was not finished: %s", got)
	}
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		f.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}
