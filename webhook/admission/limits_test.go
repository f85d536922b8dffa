package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/webhook/metrics"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

const testUID = "7f0b2c1e-0000-4000-8000-000000000001"

// podReviewJSON wraps a Pod built by build in a review asking for pytorch-training.
func podReviewJSON(t *testing.T, build func(p *corev1.Pod)) []byte {
	t.Helper()
	pod := corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "train-", Labels: map[string]string{"ai.example.com/profile": "pytorch-training"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pytorch", Image: "img"}}}}
	build(&pod)
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return reviewJSON(t, func(r *admissionv1.AdmissionReview) { r.Request.Object.Raw = raw })
}

// send posts a review to /mutate and decodes what the client saw: the HTTP status and the
// AdmissionResponse.
func send(t *testing.T, client *http.Client, url string, in []byte) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	resp, body := post(t, client, url+"/mutate", "application/json", in)
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Response == nil {
		t.Fatalf("status %d without an AdmissionReview: %.300s", resp.StatusCode, body)
	}
	return resp.StatusCode, review.Response
}

// TestWorkLimitsAnswerA5xxThatKeepsTheUID: a review over a limit on the work it causes gets an
// HTTP 5xx (so failurePolicy applies) naming the limit and its flag, and the server goes on.
func TestWorkLimitsAnswerA5xxThatKeepsTheUID(t *testing.T) {
	manyContainers := func(n int) func(p *corev1.Pod) {
		return func(p *corev1.Pod) {
			for i := 1; i < n; i++ {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: "img"})
			}
		}
	}
	cases := []struct {
		name   string
		limits func(l *Limits)
		body   []byte
		flag   string
		limit  string
	}{
		{"JSON nodes counted before decoding", func(l *Limits) { l.JSONNodes = 50 },
			podReviewJSON(t, func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, make([]corev1.Container, 60)...) }),
			"--max-json-nodes", metrics.LimitJSONNodes},
		{"containers of every kind", func(l *Limits) { l.Containers = 3 }, podReviewJSON(t, func(p *corev1.Pod) {
			manyContainers(2)(p)
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "img"}, {Name: "init2", Image: "img"}}
		}), "--max-containers", metrics.LimitContainers},
		{"patch operations", func(l *Limits) { l.PatchOps = 12 } /* an ordinary review needs 12 */, podReviewJSON(t, manyContainers(5)), "--max-patch-ops", metrics.LimitPatchOps},
		{"response bytes", func(l *Limits) { l.ResponseBytes = 2000 }, podReviewJSON(t, manyContainers(5)), "--max-response-bytes", metrics.LimitResponseBytes},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t)
			h.Limits = DefaultLimits()
			tc.limits(&h.Limits)
			srv, client := tlsServer(t, h)
			code, r := send(t, client, srv.URL, tc.body)
			if code != http.StatusInternalServerError || r.UID != testUID || r.Allowed || r.Result.Reason != metav1.StatusReasonInternalError ||
				!strings.Contains(r.Result.Message, tc.flag) || r.Patch != nil {
				t.Fatalf("want a 500 keeping the UID, naming %s: %d %+v", tc.flag, code, r)
			}
			if got := testutil.ToFloat64(h.Metrics.LimitRejections.WithLabelValues(tc.limit)); got != 1 {
				t.Fatalf("rejections for %s = %v", tc.limit, got)
			}
			// The next ordinary review is answered as usual.
			if code, r := send(t, client, srv.URL, reviewJSON(t, nil)); code != 200 || r.Patch == nil {
				t.Fatalf("an ordinary review after the refusal: %d %+v", code, r)
			}
		})
	}
}

// TestWarningsAreTrimmedNotRefused: a Pod with many conflicts is still mutated; the answer
// carries at most --max-warnings warnings, the last saying how many more there were.
func TestWarningsAreTrimmedNotRefused(t *testing.T) {
	h := newHandler(t)
	h.Limits = DefaultLimits()
	h.Limits.Warnings = 3
	srv, client := tlsServer(t, h)
	// Both containers the profile targets set their own value of each of its 4 env vars.
	body := podReviewJSON(t, func(p *corev1.Pod) {
		p.Spec.Containers = []corev1.Container{{Name: "pytorch", Image: "img"}, {Name: "trainer", Image: "img"}}
		for i := range p.Spec.Containers {
			for _, name := range []string{"NCCL_DEBUG", "NCCL_SOCKET_IFNAME", "TORCH_NCCL_ASYNC_ERROR_HANDLING", "PYTHONUNBUFFERED"} {
				p.Spec.Containers[i].Env = append(p.Spec.Containers[i].Env, corev1.EnvVar{Name: name, Value: "mine"})
			}
		}
	})
	code, r := send(t, client, srv.URL, body)
	if code != 200 || !r.Allowed || r.Patch == nil {
		t.Fatalf("want the Pod mutated: %d %+v", code, r)
	}
	if len(r.Warnings) != 3 || !strings.HasPrefix(r.Warnings[2], "6 more settings") {
		t.Fatalf("want 2 warnings and a summary of 6 more, got %q", r.Warnings)
	}
}

// TestOversizedBodyRefusedBeforeReading: a Content-Length over the cap is refused from the
// header alone.
func TestOversizedBodyRefusedBeforeReading(t *testing.T) {
	h := newHandler(t)
	srv, client := tlsServer(t, h)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/mutate", pr)
	req.ContentLength = MaxBodyBytes + 1
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req) // nothing of the body is ever written
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

// stall starts an upload that declares size bytes, sends part of them and waits; closing the
// returned writer ends it.
func stall(t *testing.T, client *http.Client, url string, size int64) *io.PipeWriter {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, url, pr)
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/json")
	go func() {
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := pw.Write(bytes.Repeat([]byte(" "), 1024)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	return pw
}

// TestStalledUploadsCannotStarveSmallReviews: bodies reserve their Content-Length from a
// shared buffer; when it is full a large body is answered 503 after the queue wait, while a
// small review still fits and is mutated.
func TestStalledUploadsCannotStarveSmallReviews(t *testing.T) {
	h := newHandler(t)
	h.Limits = DefaultLimits()
	h.Limits.BodyBufferBytes = 4 * MaxBodyBytes // 3 maximal bodies, and an eighth for small ones
	srv, client := tlsServer(t, h)
	for i := 0; i < 3; i++ {
		stall(t, client, srv.URL+"/mutate", MaxBodyBytes)
	}
	time.Sleep(100 * time.Millisecond) // the stalled upload holds its reservation

	big := podReviewJSON(t, func(p *corev1.Pod) {
		p.Annotations = map[string]string{"big": strings.Repeat("x", 2<<20)} // 2 MiB: would eat into the small share
	})
	start := time.Now()
	code, r := send(t, client, srv.URL, big)
	if code != http.StatusServiceUnavailable || r.Result.Reason != metav1.StatusReasonServiceUnavailable ||
		!strings.Contains(r.Result.Message, "--max-body-buffer-bytes") {
		t.Fatalf("a body that does not fit: want 503 naming the flag, got %d %+v", code, r)
	}
	if waited := time.Since(start); waited > QueueWait+2*time.Second {
		t.Fatalf("overload must be answered after the queue wait, took %s", waited)
	}
	if code, r := send(t, client, srv.URL, reviewJSON(t, nil)); code != 200 || r.Patch == nil {
		t.Fatalf("a small review beside the stalled upload: %d %+v", code, r)
	}
	if got := testutil.ToFloat64(h.Metrics.LimitRejections.WithLabelValues(metrics.LimitBodyBuffer)); got != 1 {
		t.Fatalf("body buffer rejections = %v", got)
	}
}

// TestConcurrentReviewsAreCapped: with every turn taken, a review waits the queue wait and is
// answered 503 with its UID; when the turn frees, reviews are decided again.
func TestConcurrentReviewsAreCapped(t *testing.T) {
	h := newHandler(t)
	h.Limits = DefaultLimits()
	h.Limits.Concurrent = 1
	set, _ := profile.Parse(profile.Examples, "ai.example.com")
	hold, held := make(chan struct{}), make(chan struct{}, 1)
	var blocked atomic.Bool
	h.Profiles = func() *profile.Set {
		if blocked.CompareAndSwap(false, true) { // the first review keeps its turn until released
			held <- struct{}{}
			<-hold
		}
		return set
	}
	srv, client := tlsServer(t, h)
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(hold) }) }) // also when the test fails early
	first := make(chan int, 1)
	go func() {
		resp, _ := post(t, client, srv.URL+"/mutate", "application/json", reviewJSON(t, nil))
		first <- resp.StatusCode
	}()
	<-held
	code, r := send(t, client, srv.URL, reviewJSON(t, nil))
	if code != http.StatusServiceUnavailable || r.UID != testUID || !strings.Contains(r.Result.Message, "--max-concurrent-reviews") {
		t.Fatalf("want 503 keeping the UID, got %d %+v", code, r)
	}
	release.Do(func() { close(hold) })
	if c := <-first; c != 200 {
		t.Fatalf("the review holding the turn: %d", c)
	}
	if code, _ := send(t, client, srv.URL, reviewJSON(t, nil)); code != 200 {
		t.Fatalf("after the turn freed: %d", code)
	}
}

func TestJSONNodesCountsObjectsAndArraysOutsideStrings(t *testing.T) {
	for doc, want := range map[string]int{
		`{}`:                          1,
		`{"a":[{},{}],"b":[1,2]}`:     5,
		`{"s":"{[{[\"{"}`:             1,
		`{"s":"\\","t":[]}`:           2,
		`[[[[[]]]]]`:                  5,
		`{"k":"esc \\\" [ {","x":{}}`: 2,
	} {
		if got := jsonNodes([]byte(doc)); got != want {
			t.Errorf("%s: %d, want %d", doc, got, want)
		}
	}
}
