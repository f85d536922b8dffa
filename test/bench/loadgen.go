package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Phase is the outcome of one load phase, or of several added together.
type Phase struct {
	OK                 int             // answered 200 with a patch
	Failed             int             // errors (first kept in Err)
	Dropped            int             // open loop: not sent because maxInFlight requests were pending
	Requests           int             // sent (open loop: due minus Dropped), for CPU per request
	Elapsed            time.Duration   // from the first send to the last answer
	Lat                []time.Duration // of the OK requests
	Err                error
	ServerCPU, LoadCPU time.Duration // CPU time the server and this process used (measure)
	PeakRSS            int64         // the server's VmHWM at the end (measure)
	mu                 sync.Mutex
}

func (p *Phase) record(d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.Failed++
		p.Err = cmp.Or(p.Err, err)
		return
	}
	p.OK++
	p.Lat = append(p.Lat, d)
}

func (p *Phase) add(q *Phase) {
	p.OK, p.Failed, p.Dropped, p.Requests = p.OK+q.OK, p.Failed+q.Failed, p.Dropped+q.Dropped, p.Requests+q.Requests
	p.Elapsed, p.ServerCPU, p.LoadCPU = p.Elapsed+q.Elapsed, p.ServerCPU+q.ServerCPU, p.LoadCPU+q.LoadCPU
	p.Lat, p.Err = append(p.Lat, q.Lat...), cmp.Or(p.Err, q.Err)
}

// Rate is OK requests per second.
func (p *Phase) Rate() float64 { return float64(p.OK) / p.Elapsed.Seconds() }

// Sent is requests sent per second.
func (p *Phase) Sent() float64 { return float64(p.Requests) / p.Elapsed.Seconds() }

// Percentiles summarises the latencies of the OK requests.
func (p *Phase) Percentiles() Latencies { return Summarise(p.Lat) }

// cores is d over the phase's time: how many CPUs' worth it took.
func (p *Phase) cores(d time.Duration) float64 { return d.Seconds() / p.Elapsed.Seconds() }

func (p *Phase) cpuPerReq() time.Duration {
	if p.Requests == 0 {
		return 0
	}
	return p.ServerCPU / time.Duration(p.Requests)
}

// measure runs one phase against s (f), with the CPU time s and this process used and s's
// peak RSS.
func (s *Server) measure(f func() *Phase) (*Phase, error) {
	s0, err := ReadUsage(s.Proc.PID())
	if err != nil {
		return nil, err
	}
	c0, _ := ReadUsage(os.Getpid())
	p := f()
	s1, err := ReadUsage(s.Proc.PID())
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", s.Name, err, s.Proc.Failure())
	}
	c1, _ := ReadUsage(os.Getpid())
	p.ServerCPU, p.LoadCPU, p.PeakRSS = s1.CPU-s0.CPU, c1.CPU-c0.CPU, s1.PeakRSS
	return p, nil
}

// ClosedLoop keeps concurrency requests in flight for dur (at most maxReq requests in all):
// each worker sends its next request when its previous one is answered. The completed rate
// is the server's saturated throughput when concurrency is high enough.
func ClosedLoop(ctx context.Context, s *Server, concurrency int, dur time.Duration, maxReq int) *Phase {
	p := &Phase{Lat: make([]time.Duration, 0, min(maxReq, 1<<20))}
	var sent atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Since(start) < dur && sent.Add(1) <= int64(maxReq) {
				t0 := time.Now()
				err := s.Do(ctx)
				p.record(time.Since(t0), err)
			}
		})
	}
	wg.Wait()
	p.Requests, p.Elapsed = p.OK+p.Failed, time.Since(start)
	return p
}

// OpenLoop sends requests at rate per second for dur, each at its intended time whether or
// not earlier ones were answered, and measures each latency from its intended send time:
// when the server (or this generator) falls behind, the wait counts against the server,
// so coordinated omission cannot hide it. At most maxInFlight requests are pending; a
// request due while that many are pending is dropped and counted.
func OpenLoop(ctx context.Context, s *Server, rate int, dur time.Duration, maxInFlight int) *Phase {
	total := int(math.Round(float64(rate) * dur.Seconds()))
	interval := time.Second / time.Duration(rate)
	p := &Phase{Lat: make([]time.Duration, 0, total)}
	var inFlight atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		intended := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(intended))
		if inFlight.Load() >= int64(maxInFlight) {
			p.Dropped++
			continue
		}
		inFlight.Add(1)
		wg.Go(func() {
			defer inFlight.Add(-1)
			err := s.Do(ctx)
			p.record(time.Since(intended), err)
		})
	}
	wg.Wait()
	p.Requests, p.Elapsed = total-p.Dropped, time.Since(start)
	return p
}

// Latencies summarises a sample.
type Latencies struct {
	N              int
	P50, P99, P999 time.Duration
}

// Summarise sorts lat in place and picks the percentiles (nearest rank; 0 when there are none).
func Summarise(lat []time.Duration) Latencies {
	slices.Sort(lat)
	at := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[max(0, min(int(math.Ceil(p*float64(len(lat))))-1, len(lat)-1))]
	}
	return Latencies{N: len(lat), P50: at(.50), P99: at(.99), P999: at(.999)}
}
