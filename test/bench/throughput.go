package bench

import (
	"cmp"
	"context"
	"fmt"
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

// RateFigures is one server at one open-loop rate, over all rounds.
type RateFigures struct {
	Rate      int
	Lat       Latencies
	Achieved  float64 // answered per second
	Failed    int
	Dropped   int
	CPUPerReq time.Duration
}

// ServerFigures is one server's figures.
type ServerFigures struct {
	Name         string
	SatRPS       []float64 // saturated throughput of each round
	SatLat       Latencies // closed-loop latency at saturation (queueing included)
	SatCPUPerReq time.Duration
	// LoadgenCPU is the load generator's CPU use during this server's saturation phases,
	// in cores: near 1.0 with a confined generator means the generator, not the server,
	// may have been the limit.
	LoadgenCPU float64
	ServerCPU  float64 // the server's CPU use in its saturation phases, in cores
	Open       []RateFigures
	PeakRSS    int64
	Failed     int
	Err        error
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

// OpenAt returns the figures at rate, nil if not measured (or s is nil).
func (s *ServerFigures) OpenAt(rate int) *RateFigures {
	if s == nil {
		return nil
	}
	for i := range s.Open {
		if s.Open[i].Rate == rate {
			return &s.Open[i]
		}
	}
	return nil
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
	type acc struct {
		sat  Phase
		open map[int]*Phase
		rps  []float64
	}
	accs := make([]*acc, len(servers))
	for i := range accs {
		accs[i] = &acc{open: map[int]*Phase{}}
		for _, r := range cfg.Rates {
			accs[i].open[r] = &Phase{}
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
			s, a := servers[i], accs[i]
			progress(fmt.Sprintf("B1 round %d/%d %s: saturation, concurrency %d, %s", round+1, cfg.Rounds, s.Name, cfg.Concurrency, cfg.Step))
			r, err := phase(s, &a.sat, func() *Phase { return ClosedLoop(ctx, s, cfg.Concurrency, cfg.Step, cfg.MaxRequests) })
			if err != nil {
				return nil, err
			}
			a.rps = append(a.rps, r.Rate())
			for _, rate := range cfg.Rates {
				progress(fmt.Sprintf("B1 round %d/%d %s: open loop %d/s, %s", round+1, cfg.Rounds, s.Name, rate, cfg.Step))
				if _, err := phase(s, a.open[rate], func() *Phase { return OpenLoop(ctx, s, rate, cfg.Step, cfg.MaxInFlight) }); err != nil {
					return nil, err
				}
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	res := &ThroughputResult{Config: cfg}
	for i, s := range servers {
		a := accs[i]
		u, err := ReadUsage(s.Proc.PID())
		if err != nil {
			return nil, err
		}
		out := &ServerFigures{Name: s.Name, SatRPS: a.rps, SatLat: Summarise(a.sat.Lat), SatCPUPerReq: a.sat.cpuPerReq(),
			LoadgenCPU: a.sat.cores(a.sat.LoadCPU), ServerCPU: a.sat.cores(a.sat.ServerCPU),
			PeakRSS: u.PeakRSS, Failed: a.sat.Failed, Err: a.sat.Err}
		for _, rate := range cfg.Rates {
			o := a.open[rate]
			out.Open = append(out.Open, RateFigures{Rate: rate, Lat: Summarise(o.Lat), Achieved: o.Rate(),
				Failed: o.Failed, Dropped: o.Dropped, CPUPerReq: o.cpuPerReq()})
			out.Failed += o.Failed
			out.Err = cmp.Or(out.Err, o.Err)
		}
		res.Servers = append(res.Servers, out)
	}
	return res, nil
}
