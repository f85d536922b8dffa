package controlplane

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	burstPods    = 300
	burstWorkers = 50
)

// Case 10: a burst of concurrent Pod creates is admitted and mutated in full.
// The log reports the admission latency the API server measured for the
// webhook (apiserver_admission_webhook_admission_duration_seconds).
func TestBurstOfCreatesIsAllAdmittedAndMutated(t *testing.T) {
	requireControlPlane(t)
	ns := optedInNamespace(t)
	installStackWebhook(t, ns)
	durations := map[string]string{"name": webhookName, "type": "admit", "operation": "CREATE"}
	before := scrapeMetrics(t).histogram(metricWebhookDuration, durations)

	var (
		mu        sync.Mutex
		latencies []time.Duration
		problems  []string
		wg        sync.WaitGroup
	)
	next := make(chan int)
	start := time.Now()
	for range burstWorkers {
		wg.Go(func() {
			for i := range next {
				t0 := time.Now()
				p, err := createPod(ns, trainingPod(fmt.Sprintf("burst-%03d", i), optInLabel(gpuProfile)), false)
				d := time.Since(t0)
				mu.Lock()
				latencies = append(latencies, d)
				switch {
				case err != nil:
					problems = append(problems, fmt.Sprintf("create burst-%03d: %v", i, err))
				case len(gpuProfileProblems(p)) > 0:
					problems = append(problems, fmt.Sprintf("burst-%03d: %v", i, gpuProfileProblems(p)))
				}
				mu.Unlock()
			}
		})
	}
	for i := range burstPods {
		next <- i
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)

	if len(problems) > 0 {
		t.Errorf("%d of %d creates not admitted with the profile; first: %s", len(problems), burstPods, problems[0])
	}
	stored, err := fx.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mutated := 0
	for i := range stored.Items {
		if len(gpuProfileProblems(&stored.Items[i])) == 0 {
			mutated++
		}
	}
	if len(stored.Items) != burstPods || mutated != burstPods {
		t.Errorf("stored %d Pods, %d of them mutated; want %d and %d", len(stored.Items), mutated, burstPods, burstPods)
	}

	slices.Sort(latencies)
	pct := func(q float64) time.Duration {
		return latencies[int(q*float64(len(latencies)-1))].Round(100 * time.Microsecond)
	}
	t.Logf("%d creates by %d workers in %v (%.0f/s); client-side create latency p50=%v p90=%v p99=%v max=%v",
		burstPods, burstWorkers, wall.Round(time.Millisecond), float64(burstPods)/wall.Seconds(),
		pct(0.5), pct(0.9), pct(0.99), latencies[len(latencies)-1].Round(100*time.Microsecond))
	measured := scrapeMetrics(t).histogram(metricWebhookDuration, durations).minus(before)
	t.Logf("API server's %s{name=%q} over the burst: %v", metricWebhookDuration, webhookName, measured)
	if measured.count < burstPods {
		t.Errorf("the API server measured %.0f calls to %s, want at least %d", measured.count, webhookName, burstPods)
	}
}
