package bench

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ThroughputConfig bounds B1 in time and count.
type ThroughputConfig struct {
	Rounds      int           // alternating rounds: each server gets every phase once per round
	Step        time.Duration // length of each phase
	Warmup      time.Duration // closed-loop warm-up per server before the first round
	Concurrency int           // closed loop
	Rates       []int         // open loop, requests per second
	MaxRequests int           // cap per closed-loop phase
	MaxInFlight int           // open loop: pending requests beyond this are dropped and counted
	Settle      time.Duration // pause before each phase (connections, GC of the previous one)
}

// ServerFigures is one server's figures: its phases of each kind added over the rounds.
type ServerFigures struct {
	Name    string
	SatRPS  []float64      // saturated throughput of each round
	Sat     *Phase         // closed loop at saturation (latency includes queueing)
	Open    map[int]*Phase // open loop, by rate
	PeakRSS int64
}

// Failures adds up the failed and dropped requests of every phase, with the first error.
func (s *ServerFigures) Failures() (failed, dropped int, first error) {
	failed, first = s.Sat.Failed, s.Sat.Err
	for _, rate := range slices.Sorted(maps.Keys(s.Open)) {
		o := s.Open[rate]
		failed, dropped, first = failed+o.Failed, dropped+o.Dropped, cmp.Or(first, o.Err)
	}
	return failed, dropped, first
}

// SatMedian is the median saturated throughput over the rounds.
func (s *ServerFigures) SatMedian() float64 {
	v := slices.Clone(s.SatRPS)
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2]
}

// OpenAt returns the open-loop phases at rate, nil if not measured (or s is nil).
func (s *ServerFigures) OpenAt(rate int) *Phase {
	if s == nil {
		return nil
	}
	return s.Open[rate]
}

// ThroughputResult is B1 for all servers.
type ThroughputResult struct {
	Config  ThroughputConfig
	Servers []*ServerFigures
}

// RunThroughput measures the servers in alternating rounds: in round r the servers take turns
// (the order flips every round, so drift in the machine's state favours neither), and each
// runs a closed-loop saturation phase and then one open-loop phase per rate.
func RunThroughput(ctx context.Context, cfg ThroughputConfig, servers []*Server, progress func(string)) (*ThroughputResult, error) {
	figs := make([]*ServerFigures, len(servers))
	for i, s := range servers {
		figs[i] = &ServerFigures{Name: s.Name, Sat: &Phase{}, Open: map[int]*Phase{}}
		for _, r := range cfg.Rates {
			figs[i].Open[r] = &Phase{}
		}
	}
	// phase runs one phase of s into a.
	phase := func(s *Server, a *Phase, f func() *Phase) (*Phase, error) {
		time.Sleep(cfg.Settle)
		p, err := s.measure(f)
		if err == nil {
			a.add(p)
		}
		return p, err
	}
	for _, s := range servers {
		progress(fmt.Sprintf("B1 warm-up %s (%s)", s.Name, cfg.Warmup))
		r := ClosedLoop(ctx, s, cfg.Concurrency, cfg.Warmup, cfg.MaxRequests)
		if r.Failed > 0 {
			return nil, fmt.Errorf("%s failed during warm-up: %d errors, first: %v", s.Name, r.Failed, r.Err)
		}
	}
	for round := range cfg.Rounds {
		for k := range servers {
			i := k
			if round%2 == 1 {
				i = len(servers) - 1 - k
			}
			s, a := servers[i], figs[i]
			progress(fmt.Sprintf("B1 round %d/%d %s: saturation, concurrency %d, %s", round+1, cfg.Rounds, s.Name, cfg.Concurrency, cfg.Step))
			r, err := phase(s, a.Sat, func() *Phase { return ClosedLoop(ctx, s, cfg.Concurrency, cfg.Step, cfg.MaxRequests) })
			if err != nil {
				return nil, err
			}
			a.SatRPS = append(a.SatRPS, r.Rate())
			for _, rate := range cfg.Rates {
				progress(fmt.Sprintf("B1 round %d/%d %s: open loop %d/s, %s", round+1, cfg.Rounds, s.Name, rate, cfg.Step))
				if _, err := phase(s, a.Open[rate], func() *Phase { return OpenLoop(ctx, s, rate, cfg.Step, cfg.MaxInFlight) }); err != nil {
					return nil, err
				}
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	for i, s := range servers {
		u, err := ReadUsage(s.Proc.PID())
		if err != nil {
			return nil, err
		}
		figs[i].PeakRSS = u.PeakRSS
	}
	return &ThroughputResult{Config: cfg, Servers: figs}, nil
}
