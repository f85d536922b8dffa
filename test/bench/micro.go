package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/ai-webhook/ai-webhook/test/bench/reference"
	"github.com/ai-webhook/ai-webhook/test/internal/review"
	"github.com/ai-webhook/ai-webhook/webhook/admission"
	"github.com/ai-webhook/ai-webhook/webhook/metrics"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// Impl is a handler timed in-process by B2 and B3.
type Impl struct {
	Name    string
	Handler http.Handler
}

// Floor is the name of the decode/encode floor.
const Floor = "floor"

// Impls are ai-webhook's admission handler (with its metrics and an info-level JSON logger
// writing to io.Discard, so formatting the log line is counted), the reference's
// controller-runtime webhook, and the floor.
func Impls(set *profile.Set) []Impl {
	return []Impl{
		{Name: Ours, Handler: &admission.Handler{
			Profiles: func() *profile.Set { return set },
			Keys:     profile.KeysFor(Domain),
			Log:      slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
			Metrics:  metrics.New(),
		}},
		{Name: Reference, Handler: reference.NewWebhook(set, Domain)},
		{Name: Floor, Handler: http.HandlerFunc(floor)},
	}
}

// floor is the least any webhook does for a review: read the body, decode the
// AdmissionReview and the Pod in it, and encode an answer (allowed, no patch), with the
// same encoding/json the handler uses.
func floor(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "bad review", http.StatusBadRequest)
		return
	}
	var pod corev1.Pod
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&review)
}

// discardWriter is a ResponseWriter that keeps the status only.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}

var mutateURL = &url.URL{Path: "/mutate", RawQuery: "timeout=10s"}

// Answer runs h once on body and returns the status and response body.
func Answer(h http.Handler, body []byte) (int, []byte) {
	w, r := httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, mutateURL.String(), bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(w, r)
	return w.Code, w.Body.Bytes()
}

// measure times h on body with testing.Benchmark (see setBenchTime), handing the body over
// as the HTTP server would. Besides the wall time it returns the CPU time (user+system of
// this process) per call over every iteration testing.Benchmark ran: with GOMAXPROCS=1 that
// is the work of one call, garbage collection included, and unlike wall time it does not
// grow when other processes take the CPU away.
func measure(h http.Handler, body []byte) (testing.BenchmarkResult, time.Duration) {
	var ops int
	cpu0 := processCPU()
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		w := &discardWriter{h: http.Header{}}
		for b.Loop() {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, &http.Request{Method: http.MethodPost, URL: mutateURL, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
				ContentLength: int64(len(body)), Host: "127.0.0.1", RemoteAddr: "127.0.0.1:40000", RequestURI: "/mutate?timeout=10s"})
			ops++
		}
		if w.code != http.StatusOK {
			b.Fatalf("HTTP %d", w.code)
		}
	})
	if ops == 0 {
		return res, 0
	}
	return res, (processCPU() - cpu0) / time.Duration(ops)
}

// processCPU is this process's user+system time so far.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// setBenchTime sets how long (e.g. "1s") or how many times (e.g. "1x") measure runs each
// case; it returns a function restoring the previous value.
func setBenchTime(v string) (restore func(), err error) {
	f := flag.Lookup("test.benchtime")
	if f == nil {
		testing.Init()
		f = flag.Lookup("test.benchtime")
	}
	prev := f.Value.String()
	if err := f.Value.Set(v); err != nil {
		return nil, err
	}
	return func() { _ = f.Value.Set(prev) }, nil
}

// verify answers body with every implementation once and checks the answers: the patches
// apply, and ai-webhook's and the reference's patched Pods are the same Pod.
func verify(impls []Impl, sh Shape, body []byte) error {
	var patched []*corev1.Pod
	for _, im := range impls {
		code, resp := Answer(im.Handler, body)
		if code != http.StatusOK {
			return fmt.Errorf("%s on %s: HTTP %d: %.300s", im.Name, sh.Key, code, resp)
		}
		pod, err := checkAnswer(im.Name == Floor, body, resp) // the floor answers without mutating
		if err != nil {
			return fmt.Errorf("%s on %s: %w", im.Name, sh.Key, err)
		}
		if pod != nil {
			patched = append(patched, pod)
		}
	}
	for i := 1; i < len(patched); i++ {
		if !equality.Semantic.DeepEqual(patched[0], patched[i]) {
			return fmt.Errorf("%s: the patched Pods of %s and %s differ", sh.Key, impls[0].Name, impls[i].Name)
		}
	}
	return nil
}

// MicroRow is one implementation on one shape.
type MicroRow struct {
	Shape    Shape
	Impl     string
	Bytes    int // of the review
	Result   testing.BenchmarkResult
	CPUPerOp time.Duration
}

// NsPerOp is the CPU time per admission, the figure B2 and B3 report.
func (r MicroRow) NsPerOp() float64 { return float64(r.CPUPerOp) }

// WallNsPerOp is the wall time per admission.
func (r MicroRow) WallNsPerOp() float64 {
	if r.Result.N == 0 {
		return 0
	}
	return float64(r.Result.T.Nanoseconds()) / float64(r.Result.N)
}

// RunMicro times every implementation on every shape (B2, and B3 through the floor), each
// shape once its answers are checked (verify).
func RunMicro(impls []Impl, shapes []Shape, progress func(string)) ([]MicroRow, error) {
	var rows []MicroRow
	for _, sh := range shapes {
		body, err := review.Body(sh.Pod, "7f1c0e5a-0000-4000-8000-000000000001")
		if err != nil {
			return nil, err
		}
		if err := verify(impls, sh, body); err != nil {
			return nil, err
		}
		for _, im := range impls {
			progress(fmt.Sprintf("B2/B3 %s: %s (%d bytes)", sh.Key, im.Name, len(body)))
			res, cpu := measure(im.Handler, body)
			if res.N == 0 {
				return nil, fmt.Errorf("%s on %s: the benchmark failed", im.Name, sh.Key)
			}
			rows = append(rows, MicroRow{Shape: sh, Impl: im.Name, Bytes: len(body), Result: res, CPUPerOp: cpu})
		}
	}
	return rows, nil
}
