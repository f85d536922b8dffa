package bench

import (
	"context"
	"fmt"
	"math"
	"time"
)

// OverloadConfig is the overload phase: open-loop load at multiples of the highest saturated
// rate among the servers, the same load for each.
type OverloadConfig struct {
	Multiples   []int         // of the saturated rate, e.g. 2 and 5
	Step        time.Duration // length of each phase
	MaxInFlight int           // pending requests beyond this are dropped by the generator and counted
	Settle      time.Duration // pause after each phase: the server works off what it queued
}

// OverloadFigures is one server at one multiple: the phase (accepted requests are the OK
// ones, their latency from the intended send time; failed: refused, e.g. 503 over a limit,
// timed out or connection errors; PeakRSS over the phase).
type OverloadFigures struct {
	Server   string
	Multiple int
	SatRate  float64 // the server's own saturated rate
	Offered  int     // requests per second asked of the generator: Multiple x the highest saturated rate
	RSSReset bool    // false: the kernel kept the peak, PeakRSS is the process's since it started
	*Phase
}

// OverloadResult is the overload phase for all servers.
type OverloadResult struct {
	Config OverloadConfig
	Rows   []OverloadFigures // by multiple, then server
}

// RunOverload offers each server, in turn, the same open-loop load: cfg.Multiples times the
// highest saturated rate among them (sat: B1's medians by server name), so each is at least
// that far over its capacity, and records what it accepted, how fast, and its memory.
func RunOverload(ctx context.Context, cfg OverloadConfig, servers []*Server, sat map[string]float64, progress func(string)) (*OverloadResult, error) {
	top := 0.0
	for _, s := range servers {
		if sat[s.Name] <= 0 {
			return nil, fmt.Errorf("no saturated rate of %s: B5 needs B1's", s.Name)
		}
		top = max(top, sat[s.Name])
	}
	res := &OverloadResult{Config: cfg}
	for _, m := range cfg.Multiples {
		rate := int(math.Round(top * float64(m)))
		for _, s := range servers {
			progress(fmt.Sprintf("overload %dx %s: open loop %d/s, %s", m, s.Name, rate, cfg.Step))
			reset := resetPeakRSS(s.Proc.PID())
			r, err := s.measure(func() *Phase { return OpenLoop(ctx, s, rate, cfg.Step, cfg.MaxInFlight) })
			if err != nil {
				return nil, fmt.Errorf("overload %dx: %w", m, err)
			}
			res.Rows = append(res.Rows, OverloadFigures{Server: s.Name, Multiple: m, SatRate: sat[s.Name], Offered: rate, RSSReset: reset, Phase: r})
			// Connections opened beyond the idle pool would otherwise linger into the next phase.
			s.Client.CloseIdleConnections()
			time.Sleep(cfg.Settle)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	return res, nil
}
