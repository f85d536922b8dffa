package server

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
)

// fakeCluster stands in for the informer-backed watcher (package cluster tests that one).
type fakeCluster struct {
	synced atomic.Bool
	facts  inject.Facts
}

func (c *fakeCluster) Facts() inject.Facts {
	if !c.synced.Load() {
		return inject.Facts{}
	}
	return c.facts
}
func (c *fakeCluster) Synced() bool { return c.synced.Load() }

func TestClusterFactsGateReadinessAndLeaveOutAMissingClass(t *testing.T) {
	f := newFixture(t, 0)
	c := &fakeCluster{facts: inject.Facts{Known: true}} // a cluster with no RuntimeClass at all
	f.cfg.Cluster = c
	f.start(t)
	if code, body := f.get(t, "/readyz"); code != 503 || !strings.Contains(body, "cluster facts not synced") {
		t.Fatalf("/readyz before the caches synced: %d %q", code, body)
	}
	c.synced.Store(true)
	if code, _ := f.get(t, "/readyz"); code != 200 {
		t.Fatalf("/readyz after sync: %d", code)
	}

	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
		"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
		"operation":"CREATE","namespace":"ns","object":{"apiVersion":"v1","kind":"Pod",
		"metadata":{"name":"p","labels":{"ai.example.com/profile":"llm-inference"}},
		"spec":{"containers":[{"name":"server","image":"vllm","resources":{"limits":{"nvidia.com/gpu":"1"}}}]}}}}`
	resp, err := f.client.Post("https://"+f.addr+"/mutate", "application/json", bytes.NewBufferString(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Response struct {
			Allowed  bool     `json:"allowed"`
			Patch    []byte   `json:"patch"`
			Warnings []string `json:"warnings"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if !out.Response.Allowed || strings.Contains(string(out.Response.Patch), "runtimeClassName") {
		t.Fatalf("the Pod must be admitted without the missing class: allowed %v, patch %s", out.Response.Allowed, out.Response.Patch)
	}
	if w := strings.Join(out.Response.Warnings, "\n"); !strings.Contains(w, `RuntimeClass "nvidia" not found`) {
		t.Fatalf("warnings %q", w)
	}
	if n := testutil.ToFloat64(f.srv.Metrics().MissingObjects.WithLabelValues(inject.KindRuntimeClass, "nvidia")); n != 1 {
		t.Fatalf("ai_webhook_missing_objects_total{RuntimeClass,nvidia} = %v, want 1", n)
	}
}
