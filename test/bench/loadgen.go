package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// NewClient is an HTTP client configured as the API server's webhook client: HTTP/1.1 only
// (HTTP/2 off), kept-alive connections with up to 25 idle per host, and the webhook's
// default 10 s timeout.
func NewClient(roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/2 off
			MaxIdleConnsPerHost: 25,
			MaxIdleConns:        100,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Target is one webhook endpoint and the request bodies to send it, used in turn.
type Target struct {
	URL       string // e.g. https://127.0.0.1:8443/mutate?timeout=10s
	Client    *http.Client
	Bodies    [][]byte
	AllowOnly bool // expect allowed answers without a patch (the no-op server)
	next      atomic.Uint64
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Do sends one review and checks the answer cheaply (status 200, allowed, with a patch
// unless AllowOnly): a full check of the patch is done once per server by CheckResponse
// before measuring.
func (t *Target) Do(ctx context.Context) error {
	body := t.Bodies[t.next.Add(1)%uint64(len(t.Bodies))]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, */*")
	resp, err := t.Client.Do(req)
	if err != nil {
		return err
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	_, err = io.Copy(buf, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, buf.Bytes())
	case !bytes.Contains(buf.Bytes(), []byte(`"allowed":true`)) || (!t.AllowOnly && !bytes.Contains(buf.Bytes(), []byte(`"patch":"`))):
		return fmt.Errorf("response is not an allowed, patched review: %.200s", buf.Bytes())
	}
	return nil
}

// Phase is the outcome of one load phase.
type Phase struct {
	OK       int             // answered 200 with a patch
	Failed   int             // errors (first kept in Err)
	Dropped  int             // open loop: not sent because MaxInFlight requests were pending
	Elapsed  time.Duration   // from the first send to the last answer
	Lat      []time.Duration // of the OK requests
	Err      error
	Requests int // sent (open loop: due minus Dropped), for CPU per request
}

// Rate is OK requests per second.
func (r *Phase) Rate() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

type recorder struct {
	mu     sync.Mutex
	lat    []time.Duration
	failed int
	err    error
}

func (rec *recorder) add(d time.Duration, err error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err != nil {
		rec.failed++
		if rec.err == nil {
			rec.err = err
		}
		return
	}
	rec.lat = append(rec.lat, d)
}

// ClosedLoop keeps concurrency requests in flight for dur (at most maxReq requests in all):
// each worker sends its next request when its previous one is answered. The completed rate
// is the server's saturated throughput when concurrency is high enough.
func ClosedLoop(ctx context.Context, t *Target, concurrency int, dur time.Duration, maxReq int) Phase {
	rec := &recorder{lat: make([]time.Duration, 0, min(maxReq, 1<<20))}
	var sent atomic.Int64
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) && sent.Add(1) <= int64(maxReq) {
				t0 := time.Now()
				err := t.Do(ctx)
				rec.add(time.Since(t0), err)
			}
		})
	}
	wg.Wait()
	n := len(rec.lat) + rec.failed
	return Phase{Requests: n, OK: len(rec.lat), Failed: rec.failed, Err: rec.err, Lat: rec.lat, Elapsed: time.Since(start)}
}

// OpenLoop sends requests at rate per second for dur, each at its intended time whether or
// not earlier ones were answered, and measures each latency from its intended send time:
// when the server (or this generator) falls behind, the wait counts against the server,
// so coordinated omission cannot hide it. At most maxInFlight requests are pending; a
// request due while that many are pending is dropped and counted.
func OpenLoop(ctx context.Context, t *Target, rate int, dur time.Duration, maxInFlight int) Phase {
	total := int(math.Round(float64(rate) * dur.Seconds()))
	interval := time.Second / time.Duration(rate)
	rec := &recorder{lat: make([]time.Duration, 0, total)}
	var inFlight atomic.Int64
	var wg sync.WaitGroup
	dropped := 0
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			time.Sleep(d)
		}
		if inFlight.Load() >= int64(maxInFlight) {
			dropped++
			continue
		}
		inFlight.Add(1)
		wg.Go(func() {
			defer inFlight.Add(-1)
			err := t.Do(ctx)
			rec.add(time.Since(intended), err)
		})
	}
	wg.Wait()
	return Phase{Requests: total - dropped, OK: len(rec.lat), Failed: rec.failed, Err: rec.err,
		Dropped: dropped, Lat: rec.lat, Elapsed: time.Since(start)}
}

// Percentile of sorted latencies (nearest rank); 0 when there are none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Latencies summarises a sample.
type Latencies struct {
	N              int
	P50, P99, P999 time.Duration
	Max            time.Duration
}

// Summarise sorts lat in place and picks the percentiles.
func Summarise(lat []time.Duration) Latencies {
	slices.Sort(lat)
	l := Latencies{N: len(lat), P50: Percentile(lat, .50), P99: Percentile(lat, .99), P999: Percentile(lat, .999)}
	if len(lat) > 0 {
		l.Max = lat[len(lat)-1]
	}
	return l
}
