package serverload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

// memoryLimit is the Deployment's default memory limit, given to the server as the Deployment
// does (AI_WEBHOOK_MEMORY_LIMIT from the downward API; the server's Go memory limit is 90% of it).
const memoryLimit = 256 << 20

// phaseTime is how long each attack lasts.
const phaseTime = 4 * time.Second

// TestHostileLoad attacks the real binary, one attack after another, in a 256 MiB memory
// cgroup (RSS is measured and bounded even where no cgroup can be made), while a client sends
// ordinary reviews on its kept-alive connection: every one must be answered with its patch,
// the server must stay up and under the limit, and exit 0 on SIGTERM afterwards.
func TestHostileLoad(t *testing.T) {
	cg, err := newCgroup(fmt.Sprintf("ai-webhook-serverload-%d", os.Getpid()), memoryLimit)
	if err != nil {
		t.Logf("no memory cgroup here (%v): RSS is measured and asserted instead", err)
		cg = nil
	} else {
		t.Cleanup(cg.remove) // runs after the server's cleanup: the cgroup is empty by then
		t.Logf("server in memory cgroup %s limited to %d MiB", cg.dir, memoryLimit>>20)
	}
	s := start(t, cg, []string{"AI_WEBHOOK_MEMORY_LIMIT=" + strconv.Itoa(memoryLimit)})
	_, base := s.rss()
	t.Logf("RSS after start: %.1f MiB", float64(base)/(1<<20))

	phases := []struct {
		name   string
		attack func(ctx context.Context, t *testing.T, s *server) string
	}{
		{"connection flood", connectionFlood},
		{"header flood", headerFlood},
		{"stalled bodies", stalledBodies},
		{"amplification reviews", amplification},
	}
	for _, ph := range phases {
		ordinary := startOrdinary(s)
		sampler := sampleRSS(s)
		ctx, cancel := context.WithTimeout(context.Background(), phaseTime)
		what := ph.attack(ctx, t, s)
		cancel()
		ok, failed := ordinary.stop()
		peak := sampler.stop()
		t.Logf("%-22s peak RSS %6.1f MiB; ordinary reviews answered %d, failed %d; %s",
			ph.name, float64(peak)/(1<<20), ok, len(failed), what)
		if !s.alive() {
			t.Fatalf("%s: the server died: %v", ph.name, s.proc.Failure())
		}
		if len(failed) > 0 || ok == 0 {
			t.Errorf("%s: ordinary reviews must all be answered during the attack: %d ok, %d failed, first: %v", ph.name, ok, len(failed), first(failed))
		}
		if peak >= memoryLimit {
			t.Errorf("%s: peak RSS %d MiB reached the %d MiB limit", ph.name, peak>>20, memoryLimit>>20)
		}
	}
	if cg != nil {
		t.Logf("cgroup peak %.1f MiB, OOM kills %d", float64(cg.peak())/(1<<20), cg.oomKills())
		if n := cg.oomKills(); n > 0 {
			t.Errorf("%d OOM kills in the server's cgroup", n)
		}
	}
	_, peak := s.rss()
	t.Logf("VmHWM over the whole test: %.1f MiB", float64(peak)/(1<<20))
	if code, took := s.sigterm(30 * time.Second); code != 0 {
		t.Fatalf("after the attacks SIGTERM gave exit %d after %s\n%s", code, took, cluster.Tail(s.proc.Log, 30))
	}
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

// ordinary sends an ordinary review every 20ms on one kept-alive connection, opened before the
// attack as the API server's would be.
type ordinary struct {
	cancel context.CancelFunc
	done   chan struct{}
	ok     int
	failed []error
}

func startOrdinary(s *server) *ordinary {
	o := &ordinary{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	client := s.client()
	body := review(&testing.T{}, "ordinary", trainingPod())
	if _, err := admit(ctx, client, s.url(), "ordinary", body); err != nil {
		o.failed = append(o.failed, fmt.Errorf("before the attack: %w", err))
	}
	go func() {
		defer close(o.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			uid := fmt.Sprintf("ordinary-%d", i)
			if _, err := admit(context.Background(), client, s.url(), uid, review(&testing.T{}, uid, trainingPod())); err != nil {
				o.failed = append(o.failed, err)
			} else {
				o.ok++
			}
		}
	}()
	return o
}

func (o *ordinary) stop() (int, []error) {
	o.cancel()
	<-o.done
	return o.ok, o.failed
}

// rssSampler records the highest VmRSS seen while it runs.
type rssSampler struct {
	stopc chan struct{}
	peak  atomic.Int64
	done  chan struct{}
}

func sampleRSS(s *server) *rssSampler {
	r := &rssSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			if v, _ := s.rss(); v > r.peak.Load() {
				r.peak.Store(v)
			}
			select {
			case <-r.stopc:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return r
}

func (r *rssSampler) stop() int64 { close(r.stopc); <-r.done; return r.peak.Load() }

// holdAll keeps conns open until ctx ends, then closes them.
func holdAll(ctx context.Context, conns []net.Conn) {
	<-ctx.Done()
	for _, c := range conns {
		c.Close()
	}
}

// connectionFlood: 700 TLS connections that each make one request and stay kept alive, then
// 1,500 TCP connections that never speak. The server serves up to --max-connections (512) and
// closes the rest at once.
func connectionFlood(ctx context.Context, t *testing.T, s *server) string {
	var conns []net.Conn
	served, refused := 0, 0
	for i := 0; i < 700; i++ {
		c, err := tls.Dial("tcp", s.addr, s.tls)
		if err == nil {
			_, err = fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		}
		if err == nil {
			var resp *http.Response
			if resp, err = http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				resp.Body.Close()
			}
		}
		if err != nil {
			refused++
			if c != nil {
				c.Close()
			}
			continue
		}
		served++
		conns = append(conns, c)
	}
	silent := 0
	for i := 0; i < 1500; i++ {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			break
		}
		silent++
		conns = append(conns, c)
	}
	holdAll(ctx, conns)
	if served == 0 || refused == 0 {
		t.Errorf("connection flood: %d served, %d refused: want the limit to serve some and refuse the rest", served, refused)
	}
	return fmt.Sprintf("TLS connections kept alive %d, refused %d; silent TCP connections %d", served, refused, silent)
}

// headerFlood: 450 connections each stall in the middle of a 15 KiB header, and 50 send a
// 1 MiB header, which must be refused (431) rather than read.
func headerFlood(ctx context.Context, t *testing.T, s *server) string {
	var mu sync.Mutex
	var conns []net.Conn
	pad := strings.Repeat("a", 15<<10)
	var wg sync.WaitGroup
	var stalled, refused431 atomic.Int64
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := tls.Dial("tcp", s.addr, s.tls)
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if i%10 != 0 {
				if _, err := fmt.Fprintf(c, "POST /mutate HTTP/1.1\r\nHost: x\r\nX-Pad: %s", pad); err == nil {
					stalled.Add(1)
				}
				return
			}
			_ = c.SetDeadline(time.Now().Add(phaseTime))
			go fmt.Fprintf(c, "POST /mutate HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", strings.Repeat("b", 1<<20))
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge {
				refused431.Add(1)
			}
		}(i)
	}
	wg.Wait()
	holdAll(ctx, conns)
	if refused431.Load() == 0 {
		t.Errorf("header flood: no 1 MiB header was refused with 431")
	}
	return fmt.Sprintf("stalled 15 KiB headers %d, 1 MiB headers refused with 431: %d", stalled.Load(), refused431.Load())
}

// stalledBodies: 100 uploaders at a time declare a 3 MiB body, send all but the last byte and
// stall; each refused (503) uploader reconnects and tries again until the phase ends.
func stalledBodies(ctx context.Context, t *testing.T, s *server) string {
	body := bytes.Repeat([]byte(" "), 3<<20-1)
	var wg sync.WaitGroup
	var stalled, refused atomic.Int64
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := tls.Dial("tcp", s.addr, s.tls)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				deadline, _ := ctx.Deadline()
				_ = c.SetDeadline(deadline)
				go func() {
					fmt.Fprintf(c, "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 3<<20)
					if _, err := c.Write(body); err == nil {
						stalled.Add(1)
					}
				}()
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err == nil {
					if resp.StatusCode == http.StatusServiceUnavailable {
						refused.Add(1)
					}
					resp.Body.Close()
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	if stalled.Load() == 0 || refused.Load() == 0 {
		t.Errorf("stalled bodies: %d uploads stalled, %d refused: want some buffered and the rest refused", stalled.Load(), refused.Load())
	}
	return fmt.Sprintf("3 MiB uploads fully sent and stalled %d, refused 503 %d", stalled.Load(), refused.Load())
}

// amplification: 8 workers send reviews built to make the most work: a 3 MiB body of empty
// containers, 50,000 named containers, 100 GPU containers each overriding the profile's env
// (within the limits: mutated, warnings trimmed), and one container with 15,000 duplicate env
// entries. Each answer must be a 200 or a 5xx keeping the UID, never a crash.
func amplification(ctx context.Context, t *testing.T, s *server) string {
	emptyContainers := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"empty-containers",` +
		`"resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"metadata":{"labels":{"ai.example.com/profile":"llm-inference"}},` +
		`"spec":{"containers":[` + strings.TrimSuffix(strings.Repeat("{},", (3<<20-400)/3), ",") + `]}}}}`)
	named := trainingPod()
	for i := 0; i < 50000; i++ {
		named.Spec.Containers = append(named.Spec.Containers, corev1.Container{Name: "c" + strconv.Itoa(i)})
	}
	gpu := &corev1.Pod{ObjectMeta: trainingPod().ObjectMeta}
	gpu.Labels = map[string]string{"ai.example.com/profile": "llm-inference"}
	for i := 0; i < 100; i++ {
		c := corev1.Container{Name: "serve-" + strconv.Itoa(i), Image: "vllm",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}}}
		for j := 0; j < 150; j++ {
			c.Env = append(c.Env, corev1.EnvVar{Name: "HF_HOME", Value: "/mine/" + strconv.Itoa(j)})
		}
		gpu.Spec.Containers = append(gpu.Spec.Containers, c)
	}
	dups := trainingPod()
	for j := 0; j < 15000; j++ {
		dups.Spec.Containers[0].Env = append(dups.Spec.Containers[0].Env, corev1.EnvVar{Name: "NCCL_DEBUG", Value: "TRACE"})
	}
	bodies := []struct {
		uid  string
		body []byte
	}{
		{"empty-containers", emptyContainers},
		{"named-containers", review(t, "named-containers", named)},
		{"gpu-env", review(t, "gpu-env", gpu)},
		{"duplicate-env", review(t, "duplicate-env", dups)},
	}
	for _, b := range bodies {
		if len(b.body) > 3<<20 {
			t.Fatalf("%s: %d bytes, over the 3 MiB the API server allows", b.uid, len(b.body))
		}
	}
	var mu sync.Mutex
	answers := map[string]map[int]int{}
	var bad []string
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			client := s.client()
			for i := w; ctx.Err() == nil; i++ {
				b := bodies[i%len(bodies)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url(), bytes.NewReader(b.body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue // the phase ended mid-request
				}
				raw, _ := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
				resp.Body.Close()
				var out admissionv1.AdmissionReview
				mu.Lock()
				if answers[b.uid] == nil {
					answers[b.uid] = map[int]int{}
				}
				answers[b.uid][resp.StatusCode]++
				if (resp.StatusCode != 200 && resp.StatusCode < 500) || json.Unmarshal(raw, &out) != nil || out.Response == nil || string(out.Response.UID) != b.uid {
					bad = append(bad, fmt.Sprintf("%s: %d %.200s", b.uid, resp.StatusCode, raw))
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("amplification: %d answers were neither a 200 nor a 5xx review keeping the UID; first: %s", len(bad), bad[0])
	}
	var parts []string
	for _, b := range bodies {
		parts = append(parts, fmt.Sprintf("%s %v", b.uid, answers[b.uid]))
	}
	return "answers by status: " + strings.Join(parts, ", ")
}
