package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// writeExpired replaces the pair with one that expired an hour ago.
func (f *fixture) writeExpired(t *testing.T) {
	t.Helper()
	leaf, err := f.ca.ServingValid(time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), serviceName, serviceName)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, f.cfg.KeyFile, leaf.KeyPEM)
	writeAtomic(t, f.cfg.CertFile, leaf.CertPEM)
}

// readyz asks /readyz without checking the certificate (it may have expired).
func (f *fixture) readyz(t *testing.T) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // reading readiness of an expired server
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + f.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// A Pod restarted with an expired certificate must not crash-loop silently: it starts, serves,
// says why it is not ready on /readyz, in its log and in the metric, and becomes ready when a
// renewed pair is mounted.
func TestExpiredCertificateAtStartServesUnreadyUntilRenewed(t *testing.T) {
	f := newFixture(t, 0)
	f.writeExpired(t)
	f.start(t)

	code, body := f.readyz(t)
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "serving certificate expired at ") {
		t.Fatalf("/readyz = %d %q, want 503 saying the certificate expired", code, body)
	}
	if got := testutil.ToFloat64(f.srv.Metrics().CertExpired); got != 1 {
		t.Errorf("ai_webhook_serving_certificate_expired = %v, want 1", got)
	}
	if logs := f.logs.String(); !strings.Contains(logs, `"level":"ERROR","msg":"serving certificate expired at `) {
		t.Errorf("no error log line says the certificate expired:\n%s", logs)
	}

	f.issue(t) // the renewed Secret, updated in place
	eventually(t, "readiness after the renewal", func() bool { code, _ := f.readyz(t); return code == http.StatusOK })
	if got := testutil.ToFloat64(f.srv.Metrics().CertExpired); got != 0 {
		t.Errorf("ai_webhook_serving_certificate_expired = %v after the renewal, want 0", got)
	}
	if got, want := f.servedSerial(t), fileSerial(t, f.cfg.CertFile); got != want {
		t.Errorf("serves serial %s, want the renewed %s", got, want)
	}
}

// A reload never swaps a valid pair for an expired one.
func TestExpiredCertificateIsNotReloadedOverAValidOne(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	before := f.servedSerial(t)
	f.writeExpired(t)
	eventually(t, "the failed reload to be counted", func() bool {
		return testutil.ToFloat64(f.srv.Metrics().LastReloadError.WithLabelValues("certificate")) == 1
	})
	if got := f.servedSerial(t); got != before {
		t.Errorf("serves serial %s, want the valid %s", got, before)
	}
	if code, body := f.readyz(t); code != http.StatusOK {
		t.Errorf("/readyz = %d %q, want 200", code, body)
	}
}

// A certificate that expires while in use (no Pod restart, no renewal) turns readiness off.
func TestCertificateExpiringInUseTurnsReadinessOff(t *testing.T) {
	f := newFixture(t, 0)
	f.start(t)
	notAfter := f.srv.certs.current.Load().Leaf.NotAfter
	f.srv.checkCertificate(notAfter.Add(time.Second))
	if why := f.srv.notReady(); !strings.HasPrefix(why, "serving certificate expired at ") {
		t.Errorf("not ready because %q, want the expiry", why)
	}
	if got := testutil.ToFloat64(f.srv.Metrics().CertExpired); got != 1 {
		t.Errorf("ai_webhook_serving_certificate_expired = %v, want 1", got)
	}
	f.srv.checkCertificate(notAfter.Add(-time.Hour))
	if why := f.srv.notReady(); why != "" {
		t.Errorf("not ready because %q with a valid certificate", why)
	}
}
