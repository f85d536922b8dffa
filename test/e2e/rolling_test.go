package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

// rollingClients create Pods back to back, each on its own, as many
// controllers of a busy cluster would.
const rollingClients = 8

// phaseCounts are what the clients saw while one phase lasted.
type phaseCounts struct {
	name                         string
	created, refused, unmutated  atomic.Int64
	firstRefused, firstUnmutated atomic.Value // string
}

// checkPhases logs each phase's counts and fails where a phase created no Pod, had a create
// refused or a Pod stored unmutated.
func checkPhases(t *testing.T, phases ...*phaseCounts) {
	t.Helper()
	for _, ph := range phases {
		t.Logf("%-36s created %5d  refused %d  unmutated %d", ph.name, ph.created.Load(), ph.refused.Load(), ph.unmutated.Load())
		if ph.created.Load() == 0 {
			t.Errorf("%s: no Pod was created", ph.name)
		}
		if n := ph.refused.Load(); n > 0 {
			t.Errorf("%s: %d creates refused; first: %v", ph.name, n, ph.firstRefused.Load())
		}
		if n := ph.unmutated.Load(); n > 0 {
			t.Errorf("%s: %d Pods not mutated; first: %v", ph.name, n, ph.firstUnmutated.Load())
		}
	}
}

// podLoad creates Pods of the pytorch-training profile in ns from
// rollingClients goroutines until stopped, deleting each once checked, and
// counts each create in the phase current when it began.
type podLoad struct {
	phase atomic.Pointer[phaseCounts]
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func startPodLoad(kube kubernetes.Interface, ns string, first *phaseCounts) *podLoad {
	l := &podLoad{stop: make(chan struct{})}
	l.phase.Store(first)
	zero := int64(0)
	for c := range rollingClients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				ph := l.phase.Load()
				name := fmt.Sprintf("load-%d-%d", c, i)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				pod, err := tryCreatePod(ctx, kube, ns, name, false)
				cancel()
				switch {
				case err != nil:
					ph.refused.Add(1)
					ph.firstRefused.CompareAndSwap(nil, fmt.Sprintf("%s: %v", name, err))
					continue
				case !strings.HasPrefix(pod.Annotations[injectedKey], "pytorch-training@"):
					ph.unmutated.Add(1)
					ph.firstUnmutated.CompareAndSwap(nil, fmt.Sprintf("%s: annotations %v", name, pod.Annotations))
				}
				ph.created.Add(1)
				ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
				_ = kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
				cancel()
			}
		}()
	}
	return l
}

// steadyLoad creates ns selected for injection, waits until the webhook mutates there, and
// runs a pod load in it for a few seconds of a first phase, "steady", before returning both.
// The load ends with the test at the latest, should a check stop it early.
func steadyLoad(t *testing.T, kube kubernetes.Interface, ns string) (*podLoad, *phaseCounts) {
	t.Helper()
	createNamespace(t, kube, ns, map[string]string{injectLabel: "enabled"})
	waitMutating(t, kube, ns)
	steady := &phaseCounts{name: "steady"}
	load := startPodLoad(kube, ns, steady)
	t.Cleanup(load.end)
	time.Sleep(5 * time.Second)
	return load, steady
}

// next starts counting in p from now on.
func (l *podLoad) next(p *phaseCounts) { l.phase.Store(p) }

func (l *podLoad) end() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// settle counts a last phase, "after", for a few seconds once the change is done, ends the
// load and checks every phase, that one included.
func (l *podLoad) settle(t *testing.T, phases ...*phaseCounts) {
	t.Helper()
	after := &phaseCounts{name: "after"}
	l.next(after)
	time.Sleep(3 * time.Second)
	l.end()
	checkPhases(t, append(phases, after)...)
}

// TestRollingUpdateUnderLoad: with failurePolicy Fail and two replicas, Pods
// are created (for real, not dry-run) back to back in a selected namespace
// while `pulumi up` rolls the Deployment and, separately, while one webhook
// Pod is deleted. Every create must succeed and every Pod be mutated: the
// replaced servers drain (readiness fails, Connection: close, new
// connections served for --shutdown-delay) instead of dropping requests.
func TestRollingUpdateUnderLoad(t *testing.T) {
	ctx := context.Background()
	kube := env.cluster.Client
	exitsBefore := len(env.cluster.WorkloadExits())

	deploy(t, "up", "--config", "failurePolicy=Fail", "--config", "logLevel=debug")
	t.Cleanup(func() {
		// The dev stack's settings again, for whatever runs next in this cluster.
		deploy(t, "destroy", "--config", "failurePolicy=Ignore", "--config", "logLevel=debug")
	})
	st := currentStack(t, kube)
	checkGoMemoryLimit(t, kube, st.deployment.Spec.Template.Spec.Containers[0])

	load, steady := steadyLoad(t, kube, "e2e-rolling")

	rolling := &phaseCounts{name: "pulumi up rolls the Deployment"}
	load.next(rolling)
	oldPods := webhookPods(t, kube)
	s := deploy(t, "up", "--config", "logLevel=info")
	if !slices.Contains(stepsOf(s), "update kubernetes:apps/v1:Deployment") {
		t.Errorf("steps %v: the Deployment was not updated", stepsOf(s))
	}
	waitReplaced(t, kube, oldPods)

	deleted := &phaseCounts{name: "one webhook Pod deleted"}
	load.next(deleted)
	oldPods = webhookPods(t, kube)
	victim := oldPods[0]
	if err := kube.CoreV1().Pods(webhookNamespace).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete webhook pod %s: %v", victim, err)
	}
	waitReplaced(t, kube, []string{victim})

	load.settle(t, steady, rolling, deleted)
	// The replaced servers drained and exited 0, inside the grace period.
	exits := env.cluster.WorkloadExits()[exitsBefore:]
	if len(exits) < 3 {
		t.Errorf("%d webhook processes ended, want at least 3 (two rolled, one deleted): %+v", len(exits), exits)
	}
	for _, e := range exits {
		t.Logf("webhook pod %s: %s after %v (grace %v)", e.Pod, e.Status, e.Took.Round(time.Millisecond), e.Grace)
		if e.ExitCode != 0 {
			t.Errorf("webhook pod %s ended with %s, want exit status 0", e.Pod, e.Status)
		}
	}
}

// webhookPods names the webhook's Pods that are not being deleted.
func webhookPods(t *testing.T, kube kubernetes.Interface) []string {
	t.Helper()
	var names []string
	for _, p := range mustListWebhookPods(t, kube) {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		t.Fatal("no webhook pods")
	}
	return names
}

// listWebhookPods lists the webhook's Pods (those the workload runner runs).
func listWebhookPods(kube kubernetes.Interface) ([]corev1.Pod, error) {
	l, err := kube.CoreV1().Pods(webhookNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: cluster.WorkloadLabelKey + "=" + cluster.WorkloadLabelValue})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// mustListWebhookPods is listWebhookPods, failing the test when it cannot list.
func mustListWebhookPods(t *testing.T, kube kubernetes.Interface) []corev1.Pod {
	t.Helper()
	pods, err := listWebhookPods(kube)
	if err != nil {
		t.Fatal(err)
	}
	return pods
}

// waitReplaced waits until none of old exists any more (their processes have
// ended) and the Deployment is rolled out again.
func waitReplaced(t *testing.T, kube kubernetes.Interface, old []string) {
	t.Helper()
	cluster.Eventually(t, 2*time.Minute, fmt.Sprintf("webhook pods %v to be replaced", old), func() error {
		pods, err := listWebhookPods(kube)
		if err != nil {
			return err
		}
		for _, p := range pods {
			if slices.Contains(old, p.Name) {
				return fmt.Errorf("pod %s still exists", p.Name)
			}
		}
		return nil
	})
	currentStack(t, kube)
}

// checkGoMemoryLimit reads each webhook Pod's Go memory limit from its
// /metrics: 90% of the container's memory limit, which the Deployment passes
// through the downward API.
func checkGoMemoryLimit(t *testing.T, kube kubernetes.Interface, c corev1.Container) {
	t.Helper()
	limit := c.Resources.Limits.Memory().Value()
	want := limit / 10 * 9
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // reading metrics, not admitting
	}}
	for _, p := range mustListWebhookPods(t, kube) {
		resp, err := client.Get("https://" + net.JoinHostPort(p.Status.PodIP, "8443") + "/metrics")
		if err != nil {
			t.Errorf("pod %s /metrics: %v", p.Name, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		var got string
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "go_gc_gomemlimit_bytes "); ok {
				got = v
			}
		}
		if f, err := strconv.ParseFloat(got, 64); err != nil || int64(f) != want {
			t.Errorf("pod %s: go_gc_gomemlimit_bytes %q, want %d (90%% of the container's %d)", p.Name, got, want, limit)
		}
	}
}
