package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ai-webhook/ai-webhook/webhook/metrics"
)

func TestTLS12OnlyWithForwardSecretAEADSuites(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	dial := func(suite uint16) error {
		c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.ca.Pool, ServerName: serviceName,
			MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, weak := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256} {
		if dial(weak) == nil {
			t.Errorf("TLS 1.2 with %s accepted", tls.CipherSuiteName(weak))
		}
	}
	for _, good := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
		if err := dial(good); err != nil {
			t.Errorf("TLS 1.2 with %s refused: %v", tls.CipherSuiteName(good), err)
		}
	}
}

// TestMissingCertificateIsReportedOnce: a file missing across many polls is one failed reload
// and one log line, and its return is one success.
func TestMissingCertificateIsReportedOnce(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	m := f.srv.Metrics()
	before := f.servedSerial(t)
	f.issue(t)
	eventually(t, "rotation served", func() bool { return f.servedSerial(t) != before })
	if err := os.Remove(f.cfg.CertFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, "failure flagged", func() bool { return testutil.ToFloat64(m.LastReloadError.WithLabelValues("certificate")) == 1 })
	time.Sleep(20 * f.cfg.ReloadInterval) // many polls
	if got := testutil.ToFloat64(m.ReloadsTotal.WithLabelValues("certificate", "error")); got != 1 {
		t.Fatalf("failed reloads counted %v times for one missing file, want 1", got)
	}
	if n := strings.Count(f.logs.String(), "reload failed"); n != 1 {
		t.Fatalf("%d log lines for one missing file, want 1", n)
	}
	f.issue(t)
	eventually(t, "failure cleared", func() bool { return testutil.ToFloat64(m.LastReloadError.WithLabelValues("certificate")) == 0 })
}

// TestConnectionsOverTheLimitAreClosed: with --max-connections open, another connection is
// closed at once and counted; when one closes, a new one is served.
func TestConnectionsOverTheLimitAreClosed(t *testing.T) {
	f := newFixture(t, 0)
	f.cfg.MaxConnections = 3
	f.start(t)
	var open []*tls.Conn
	for i := 0; i < 3; i++ {
		c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.ca.Pool, ServerName: serviceName})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
	}
	if _, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.ca.Pool, ServerName: serviceName}); err == nil {
		t.Fatal("a connection over the limit was served")
	}
	if got := testutil.ToFloat64(f.srv.Metrics().LimitRejections.WithLabelValues(metrics.LimitConnections)); got != 1 {
		t.Fatalf("connection rejections = %v", got)
	}
	open[0].Close()
	eventually(t, "a freed slot serves a new connection", func() bool {
		c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.ca.Pool, ServerName: serviceName})
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func TestHeaderOverTheLimitIs431(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	req, _ := http.NewRequest(http.MethodGet, "https://"+f.addr+"/healthz", nil)
	req.Header.Set("X-Flood", strings.Repeat("a", f.cfg.MaxHeaderBytes+8<<10))
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

// rawRequest writes one HTTP/1.1 request on an open connection and reads the response.
func rawRequest(c *tls.Conn, r *bufio.Reader, path string) (*http.Response, error) {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, serviceName); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// TestKeptAliveConnectionIsServedWhileDraining: a connection idle when SIGTERM arrives is not
// closed under the client: its next request is answered, with "Connection: close".
func TestKeptAliveConnectionIsServedWhileDraining(t *testing.T) {
	f := newFixture(t, 2*time.Second)
	f.start(t)
	c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.ca.Pool, ServerName: serviceName})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if resp, err := rawRequest(c, r, "/healthz"); err != nil || resp.Close {
		t.Fatalf("before SIGTERM: %v, close=%v", err, resp != nil && resp.Close)
	}
	f.stop()
	eventually(t, "draining", func() bool { return f.srv.draining.Load() })
	time.Sleep(200 * time.Millisecond)
	resp, err := rawRequest(c, r, "/healthz")
	if err != nil {
		t.Fatalf("the kept-alive connection was closed under the client: %v", err)
	}
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("want 200 with Connection: close, got %d close=%v", resp.StatusCode, resp.Close)
	}
}

func TestConfigOrdersTimeouts(t *testing.T) {
	cfg := newFixture(t, 0).cfg
	cfg.ReadTimeout, cfg.ShutdownTimeout = 10*time.Second, 19*time.Second
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "--shutdown-timeout 19s must be at least the longest a request can live, 20s") {
		t.Fatalf("want the ordering explained, got %v", err)
	}
	d := Defaults()
	tm := d.Timeouts()
	if !(tm.ReadHeader < tm.Read && tm.Read < tm.Write && tm.RequestLife <= d.ShutdownTimeout) {
		t.Fatalf("default timeouts out of order: %+v", tm)
	}
	cfg.Limits.Containers = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--max-containers must be positive") {
		t.Fatalf("want the limit named, got %v", err)
	}
}

// TestLogValuesAreCapped: a megabyte-long Pod name reaches no log line whole.
func TestLogValuesAreCapped(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	long := strings.Repeat("n", 512<<10) // four of them fit in the 3 MiB body
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1",` +
		`"resource":{"version":"v1","resource":"pods"},"operation":"CREATE","namespace":"` + long + `",` +
		`"object":{"metadata":{"name":"` + long + `","labels":{"ai.example.com/profile":"` + long + `"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
	resp, err := f.client.Post("https://"+f.addr+"/mutate", "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(body) > 4<<10 {
		t.Errorf("answer of %d bytes echoes the request", len(body))
	}
	eventually(t, "admission logged", func() bool { return strings.Contains(f.logs.String(), `"msg":"admission"`) })
	for _, line := range strings.Split(f.logs.String(), "\n") {
		if len(line) > 4<<10 {
			t.Fatalf("log line of %d bytes: %.200s", len(line), line)
		}
	}
}

// TestSlowUploaderIsCutOffSoShutdownEndsInTime: an upload trickling a byte at a time when the
// server stops accepting is ended by the read timeout, and Run returns nil within the request
// life (not after --shutdown-timeout with an error).
func TestSlowUploaderIsCutOffSoShutdownEndsInTime(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, "https://"+f.addr+"/mutate", pr)
	req.ContentLength = 100 << 10
	req.Header.Set("Content-Type", "application/json")
	go func() {
		if resp, err := f.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	go func() {
		for {
			if _, err := pw.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	f.stop()
	select {
	case err := <-f.done:
		f.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if took, life := time.Since(start), f.cfg.Timeouts().RequestLife; took > life {
			t.Fatalf("shutdown took %s, over the request life %s", took, life)
		}
	case <-time.After(f.cfg.ShutdownTimeout + 2*time.Second):
		t.Fatal("shutdown did not end")
	}
}
