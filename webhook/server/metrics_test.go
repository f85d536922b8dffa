package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ai-webhook/ai-webhook/webhook/metrics"
)

// startWithMetrics starts the fixture's server with a metrics port on loopback and returns
// that port's address.
func (f *fixture) startWithMetrics(t *testing.T) string {
	t.Helper()
	f.cfg.MetricsListen = "localhost:0" // differs from the admission port's 127.0.0.1:0
	f.start(t)
	return f.srv.metricsLn.Addr().String()
}

// plainGet asks addr over plain HTTP (no TLS), as Prometheus scrapes.
func plainGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsPortServesOnlyMetricsInPlainHTTP(t *testing.T) {
	f := newFixture(t, 0)
	addr := f.startWithMetrics(t)
	code, body := plainGet(t, addr, "/metrics")
	for _, want := range []string{"ai_webhook_profiles_loaded ", "ai_webhook_ready 1", "ai_webhook_certificate_expiry_timestamp_seconds"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET /metrics on the metrics port: %d, want 200 with %q", code, want)
		}
	}
	// Nothing of the admission port is reachable without TLS.
	for _, path := range []string{"/mutate", "/readyz", "/healthz"} {
		if code, _ := plainGet(t, addr, path); code != http.StatusNotFound {
			t.Errorf("GET %s on the metrics port: %d, want 404", path, code)
		}
	}
	// The TLS port keeps /metrics for scrape configurations that use it.
	if code, body := f.get(t, "/metrics"); code != 200 || !strings.Contains(body, "ai_webhook_ready 1") {
		t.Errorf("TLS /metrics: %d", code)
	}
}

func TestReadyGaugeFollowsReadiness(t *testing.T) {
	f := newFixture(t, 2*time.Second)
	addr := f.startWithMetrics(t)
	if _, body := plainGet(t, addr, "/metrics"); !strings.Contains(body, "ai_webhook_ready 1") {
		t.Fatal("a loaded replica must report ai_webhook_ready 1")
	}
	f.stop()
	// While draining, the metrics port still answers and says not ready.
	eventually(t, "ai_webhook_ready 0 while draining", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("the metrics port closed before the drain ended (ai_webhook_ready 0 never seen): %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "ai_webhook_ready 0")
	})
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
	f.done <- nil // for the cleanup
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("the metrics port still accepts connections after Run returned")
	}
}

// TestMetricsPortConnectionsAreCapped: over metricsMaxConnections, a connection is closed at once
// and counted; the admission port's gauge and limit are not touched.
func TestMetricsPortConnectionsAreCapped(t *testing.T) {
	f := newFixture(t, 0)
	addr := f.startWithMetrics(t)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range metricsMaxConnections {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	m := f.srv.Metrics()
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	_ = over.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := over.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("connection over the cap: read %d, %v; want it closed", n, err)
	}
	if got := testutil.ToFloat64(m.LimitRejections.WithLabelValues(metrics.LimitMetricsConns)); got != 1 {
		t.Errorf("metrics_connections rejections = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.LimitRejections.WithLabelValues(metrics.LimitConnections)); got != 0 {
		t.Errorf("admission connections rejections = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.Connections); got != 0 {
		t.Errorf("ai_webhook_open_connections = %v, want 0 (it counts the admission port only)", got)
	}
	// A stalled client holding a slot is cut off by the read-header timeout, freeing it.
	eventually(t, "a stalled connection's slot freed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		return err != nil && strings.Contains(err.Error(), "timeout")
	})
}

func TestMetricsPortBusyFailsRun(t *testing.T) {
	f := newFixture(t, 0)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	f.cfg.MetricsListen = busy.Addr().String()
	srv, err := New(f.cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "--metrics-listen") {
		t.Fatalf("Run with the metrics address taken: %v, want an error naming --metrics-listen", err)
	}
}
