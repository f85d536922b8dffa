package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"time"
)

// OverloadConfig is the overload phase: open-loop load at multiples of the highest saturated
// rate among the servers, the same load for each.
type OverloadConfig struct {
	Multiples   []int         // of the saturated rate, e.g. 2 and 5
	Step        time.Duration // length of each phase
	Concurrency int           // closed loop, to measure the saturated rate when B1 did not
	MaxRequests int
	MaxInFlight int           // pending requests beyond this are dropped by the generator and counted
	LoadCPUs    []int         // as in B1
	Settle      time.Duration // pause after each phase: the server works off what it queued
}

// OverloadFigures is one server at one multiple.
type OverloadFigures struct {
	Server    string
	Multiple  int
	SatRate   float64 // the server's own saturated rate
	Offered   int     // requests per second asked of the generator: Multiple x the highest saturated rate
	Sent      float64 // per second actually sent (offered minus dropped)
	Accepted  float64 // answered 200 with a patch, per second
	Failed    int     // refused (e.g. 503 over a limit), timed out or connection errors
	Dropped   int
	Lat       Latencies // of the accepted requests, from their intended send time
	PeakRSS   int64     // VmHWM over the phase (reset before it where the kernel allows)
	RSSReset  bool      // false: PeakRSS is the process's peak since it started
	FirstErr  error
	ServerCPU float64 // cores used by the server over the phase
}

// OverloadResult is the overload phase for all servers.
type OverloadResult struct {
	Config OverloadConfig
	Rows   []OverloadFigures // by multiple, then server
}

// resetPeakRSS resets the kernel's VmHWM of pid (writing 5 to clear_refs), so a phase's
// peak is its own.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// RunOverload offers each server, in turn, the same open-loop load: cfg.Multiples times the
// highest saturated rate among them (sat, by server name: B1's median; measured here with a
// closed loop where missing), so each is at least that far over its capacity, and records what
// it accepted, how fast, and its memory.
func RunOverload(ctx context.Context, cfg OverloadConfig, servers []*Server, sat map[string]float64, progress func(string)) (*OverloadResult, error) {
	if len(cfg.LoadCPUs) > 0 {
		undo, err := PinSelf(cfg.LoadCPUs)
		if err != nil {
			return nil, err
		}
		defer undo()
	}
	rates := map[string]float64{}
	for _, s := range servers {
		rates[s.Name] = sat[s.Name]
		if rates[s.Name] > 0 {
			continue
		}
		progress(fmt.Sprintf("overload: saturated rate of %s, concurrency %d, %s", s.Name, cfg.Concurrency, cfg.Step))
		r := ClosedLoop(ctx, s.Target, cfg.Concurrency, cfg.Step, cfg.MaxRequests)
		if r.OK == 0 {
			return nil, fmt.Errorf("overload: %s answered nothing at saturation (%d failed, first: %v)", s.Name, r.Failed, r.Err)
		}
		rates[s.Name] = r.Rate()
	}
	top := 0.0
	for _, r := range rates {
		top = max(top, r)
	}
	res := &OverloadResult{Config: cfg}
	for _, m := range cfg.Multiples {
		rate := int(math.Round(top * float64(m)))
		for _, s := range servers {
			progress(fmt.Sprintf("overload %dx %s: open loop %d/s, %s", m, s.Name, rate, cfg.Step))
			reset := resetPeakRSS(s.Proc.PID())
			u0, err := ReadUsage(s.Proc.PID())
			if err != nil {
				return nil, err
			}
			r := OpenLoop(ctx, s.Target, rate, cfg.Step, cfg.MaxInFlight)
			u1, err := ReadUsage(s.Proc.PID())
			if err != nil {
				return nil, fmt.Errorf("overload %dx: %s: %w (%v)", m, s.Name, err, s.Proc.Failure())
			}
			secs := r.Elapsed.Seconds()
			res.Rows = append(res.Rows, OverloadFigures{
				Server: s.Name, Multiple: m, SatRate: rates[s.Name], Offered: rate,
				Sent: float64(r.Requests) / secs, Accepted: float64(r.OK) / secs,
				Failed: r.Failed, Dropped: r.Dropped, Lat: Summarise(r.Lat),
				PeakRSS: u1.PeakRSS, RSSReset: reset, FirstErr: r.Err,
				ServerCPU: (u1.CPU - u0.CPU).Seconds() / secs,
			})
			// Connections opened beyond the idle pool would otherwise linger into the next phase.
			s.Target.Client.CloseIdleConnections()
			time.Sleep(cfg.Settle)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	return res, nil
}

func (r *Report) markdownOverload(p printer) {
	o := r.Overload
	if !p.section("B5: overload", o != nil) {
		return
	}
	c := o.Config
	p("The B1 processes and load generator (confined as in B1), one server at a time: an open loop offers each server the same "+
		"load, %v times the higher of the two saturated rates (B1's medians), for %s; the next column gives that load over the "+
		"server's own saturated rate. Latency is measured from each request's intended send time and is shown for "+
		"the accepted requests only (answered 200 with the patch); refused ones (ai-webhook answers 503 over "+
		"`--max-concurrent-reviews` or `--max-body-buffer-bytes` after waiting up to 1 s, or closes connections over "+
		"`--max-connections`), client timeouts (10 s) and connection errors count as failed; the generator drops, and counts, a "+
		"request due while %d are pending. Peak RSS is VmHWM over the phase (reset before it through /proc/<pid>/clear_refs). "+
		"Every new connection beyond the 25 kept alive costs a TLS handshake, as it would the API server.\n\n",
		c.Multiples, c.Step, c.MaxInFlight)
	p("| load | server | offered/s | offered / own saturated | sent/s | accepted/s | accepted / own saturated | p99 accepted | failed | dropped | server CPU (cores) | peak RSS |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range o.Rows {
		rss := fmtMiB(f.PeakRSS)
		if !f.RSSReset {
			rss += " (since start)"
		}
		p("| %dx | %s | %d | %.1fx | %.0f | %.0f | %.2f | %s | %d | %d | %.2f | %s |\n", f.Multiple, f.Server, f.Offered,
			float64(f.Offered)/f.SatRate, f.Sent, f.Accepted, f.Accepted/f.SatRate, fmtDur(f.Lat.P99), f.Failed, f.Dropped, f.ServerCPU, rss)
	}
	p("\n")
	for _, f := range o.Rows {
		if f.FirstErr != nil {
			p("First failure of %s at %dx: `%.300v`\n\n", f.Server, f.Multiple, f.FirstErr)
		}
	}
}
