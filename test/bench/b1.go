package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"
)

// B1Config bounds B1 in time and count.
type B1Config struct {
	Rounds      int           // alternating rounds: each server gets every phase once per round
	Step        time.Duration // length of each phase
	Warmup      time.Duration // closed-loop warm-up per server before the first round
	Concurrency int           // closed loop
	Rates       []int         // open loop, requests per second
	MaxRequests int           // cap per closed-loop phase
	MaxInFlight int           // open loop: pending requests beyond this are dropped and counted
	LoadCPUs    []int         // CPUs the load generator is confined to during B1; nil: not confined
	Settle      time.Duration // pause before each phase (connections, GC of the previous one)
}

// B1Open is one server at one open-loop rate, over all rounds.
type B1Open struct {
	Rate      int
	Lat       Latencies
	Achieved  float64 // answered per second
	Failed    int
	Dropped   int
	CPUPerReq time.Duration
}

// B1Server is one server's figures.
type B1Server struct {
	Name         string
	SatRPS       []float64 // saturated throughput of each round
	SatLat       Latencies // closed-loop latency at saturation (queueing included)
	SatCPUPerReq time.Duration
	// LoadgenCPU is the load generator's CPU use during this server's saturation phases,
	// in cores: near 1.0 with a confined generator means the generator, not the server,
	// may have been the limit.
	LoadgenCPU float64
	ServerCPU  float64 // the server's CPU use in its saturation phases, in cores
	Open       []B1Open
	PeakRSS    int64
	Failed     int
	Err        error
}

// SatMedian is the median saturated throughput over the rounds.
func (s *B1Server) SatMedian() float64 {
	v := slices.Clone(s.SatRPS)
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2]
}

// OpenAt returns the figures at rate, nil if not measured.
func (s *B1Server) OpenAt(rate int) *B1Open {
	for i := range s.Open {
		if s.Open[i].Rate == rate {
			return &s.Open[i]
		}
	}
	return nil
}

// B1Result is B1 for all servers.
type B1Result struct {
	Config  B1Config
	Servers []*B1Server
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

func (a *phaseAcc) add(r Run, server, client time.Duration) {
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

// RunB1 measures the servers in alternating rounds: in round r the servers take turns
// (the order flips every round, so drift in the machine's state favours neither), and each
// runs a closed-loop saturation phase and then one open-loop phase per rate.
func RunB1(ctx context.Context, cfg B1Config, servers []*Server, progress func(string)) (*B1Result, error) {
	if len(cfg.LoadCPUs) > 0 {
		undo, err := PinSelf(cfg.LoadCPUs)
		if err != nil {
			return nil, err
		}
		defer undo()
	}
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
	measure := func(s *Server, f func() Run) (Run, time.Duration, time.Duration, error) {
		time.Sleep(cfg.Settle)
		s0, err := s.Proc.Usage()
		if err != nil {
			return Run{}, 0, 0, err
		}
		c0, err := ReadUsage(os.Getpid())
		if err != nil {
			return Run{}, 0, 0, err
		}
		r := f()
		s1, err := s.Proc.Usage()
		if err != nil {
			return Run{}, 0, 0, fmt.Errorf("%s: %w (exited? %v)", s.Name, err, s.Proc.Exited())
		}
		c1, _ := ReadUsage(os.Getpid())
		return r, s1.CPU - s0.CPU, c1.CPU - c0.CPU, nil
	}
	for _, s := range servers {
		progress(fmt.Sprintf("B1 warm-up %s (%s)", s.Name, cfg.Warmup))
		r := ClosedLoop(ctx, s.Target, cfg.Concurrency, cfg.Warmup, cfg.MaxRequests)
		if r.Failed > 0 {
			return nil, fmt.Errorf("%s failed during warm-up: %d errors, first: %v", s.Name, r.Failed, r.Err)
		}
	}
	for round := range cfg.Rounds {
		order := make([]int, len(servers))
		for i := range order {
			order[i] = i
		}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			s, a := servers[i], accs[i]
			progress(fmt.Sprintf("B1 round %d/%d %s: saturation, concurrency %d, %s", round+1, cfg.Rounds, s.Name, cfg.Concurrency, cfg.Step))
			r, scpu, ccpu, err := measure(s, func() Run { return ClosedLoop(ctx, s.Target, cfg.Concurrency, cfg.Step, cfg.MaxRequests) })
			if err != nil {
				return nil, err
			}
			a.sat.add(r, scpu, ccpu)
			a.rps = append(a.rps, r.Rate())
			for _, rate := range cfg.Rates {
				progress(fmt.Sprintf("B1 round %d/%d %s: open loop %d/s, %s", round+1, cfg.Rounds, s.Name, rate, cfg.Step))
				r, scpu, ccpu, err := measure(s, func() Run { return OpenLoop(ctx, s.Target, rate, cfg.Step, cfg.MaxInFlight) })
				if err != nil {
					return nil, err
				}
				a.open[rate].add(r, scpu, ccpu)
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	res := &B1Result{Config: cfg}
	for i, s := range servers {
		a := accs[i]
		u, err := s.Proc.Usage()
		if err != nil {
			return nil, err
		}
		out := &B1Server{Name: s.Name, SatRPS: a.rps, SatLat: Summarise(a.sat.lat), SatCPUPerReq: a.sat.cpuPerReq(),
			LoadgenCPU: a.sat.clientCPU.Seconds() / a.sat.elapsed.Seconds(),
			ServerCPU:  a.sat.serverCPU.Seconds() / a.sat.elapsed.Seconds(),
			PeakRSS:    u.PeakRSS, Failed: a.sat.failed, Err: a.sat.err}
		for _, rate := range cfg.Rates {
			o := a.open[rate]
			out.Open = append(out.Open, B1Open{Rate: rate, Lat: Summarise(o.lat), Achieved: float64(o.ok) / o.elapsed.Seconds(),
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
