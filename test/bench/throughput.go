package bench

import (
	"context"
	"fmt"
	"os"
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

// phase totals across rounds.
type phaseAcc struct {
	lat       []time.Duration
	ok, req   int
	failed    int
	dropped   int
	elapsed   time.Duration
	serverCPU time.Duration
	clientCPU time.Duration
	err       error
}

func (a *phaseAcc) add(r Phase, server, client time.Duration) {
	a.lat = append(a.lat, r.Lat...)
	a.ok += r.OK
	a.req += r.Requests
	a.failed += r.Failed
	a.dropped += r.Dropped
	a.elapsed += r.Elapsed
	a.serverCPU += server
	a.clientCPU += client
	if a.err == nil {
		a.err = r.Err
	}
}

func (a *phaseAcc) cpuPerReq() time.Duration {
	if a.req == 0 {
		return 0
	}
	return a.serverCPU / time.Duration(a.req)
}

// RunThroughput measures the servers in alternating rounds: in round r the servers take turns
// (the order flips every round, so drift in the machine's state favours neither), and each
// runs a closed-loop saturation phase and then one open-loop phase per rate.
func RunThroughput(ctx context.Context, cfg ThroughputConfig, servers []*Server, progress func(string)) (*ThroughputResult, error) {
	type acc struct {
		sat  phaseAcc
		open map[int]*phaseAcc
		rps  []float64
	}
	accs := make([]*acc, len(servers))
	for i := range accs {
		accs[i] = &acc{open: map[int]*phaseAcc{}}
		for _, r := range cfg.Rates {
			accs[i].open[r] = &phaseAcc{}
		}
	}
	// measure runs one phase of s into a, with the server's and this process's CPU time.
	measure := func(s *Server, a *phaseAcc, f func() Phase) (Phase, error) {
		time.Sleep(cfg.Settle)
		s0, err := ReadUsage(s.Proc.PID())
		if err != nil {
			return Phase{}, err
		}
		c0, err := ReadUsage(os.Getpid())
		if err != nil {
			return Phase{}, err
		}
		r := f()
		s1, err := ReadUsage(s.Proc.PID())
		if err != nil {
			return Phase{}, fmt.Errorf("%s: %w (%v)", s.Name, err, s.Proc.Failure())
		}
		c1, _ := ReadUsage(os.Getpid())
		a.add(r, s1.CPU-s0.CPU, c1.CPU-c0.CPU)
		return r, nil
	}
	for _, s := range servers {
		progress(fmt.Sprintf("B1 warm-up %s (%s)", s.Name, cfg.Warmup))
		r := ClosedLoop(ctx, s.Target, cfg.Concurrency, cfg.Warmup, cfg.MaxRequests)
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
			r, err := measure(s, &a.sat, func() Phase { return ClosedLoop(ctx, s.Target, cfg.Concurrency, cfg.Step, cfg.MaxRequests) })
			if err != nil {
				return nil, err
			}
			a.rps = append(a.rps, r.Rate())
			for _, rate := range cfg.Rates {
				progress(fmt.Sprintf("B1 round %d/%d %s: open loop %d/s, %s", round+1, cfg.Rounds, s.Name, rate, cfg.Step))
				if _, err := measure(s, a.open[rate], func() Phase { return OpenLoop(ctx, s.Target, rate, cfg.Step, cfg.MaxInFlight) }); err != nil {
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
		out := &ServerFigures{Name: s.Name, SatRPS: a.rps, SatLat: Summarise(a.sat.lat), SatCPUPerReq: a.sat.cpuPerReq(),
			LoadgenCPU: a.sat.clientCPU.Seconds() / a.sat.elapsed.Seconds(),
			ServerCPU:  a.sat.serverCPU.Seconds() / a.sat.elapsed.Seconds(),
			PeakRSS:    u.PeakRSS, Failed: a.sat.failed, Err: a.sat.err}
		for _, rate := range cfg.Rates {
			o := a.open[rate]
			out.Open = append(out.Open, RateFigures{Rate: rate, Lat: Summarise(o.lat), Achieved: float64(o.ok) / o.elapsed.Seconds(),
				Failed: o.failed, Dropped: o.dropped, CPUPerReq: o.cpuPerReq()})
			out.Failed += o.failed
			if out.Err == nil {
				out.Err = o.err
			}
		}
		res.Servers = append(res.Servers, out)
	}
	return res, nil
}
