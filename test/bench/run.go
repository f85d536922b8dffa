package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/ai-webhook/ai-webhook/test/bench/reference"
	"github.com/ai-webhook/ai-webhook/test/internal/repo"
)

// Config says which parts one run measures, and how long.
type Config struct {
	Root, Dir  string            // the repository; a scratch directory (binaries, certificates, logs)
	Throughput *ThroughputConfig // B1 (nil: not run)
	Overload   *OverloadConfig   // B5 (nil: not run)
	BenchTime  string            // B2/B3 time per case, testing's -benchtime syntax ("": not run)
	PodCreates []PodCreateConfig // B4, one control plane each, in turn
	// ServerCPUs confine each server and B2/B3, LoadCPUs the load generator (nil: not
	// confined; see CPULayout).
	ServerCPUs, LoadCPUs []int
	Progress             func(string)
}

// Run measures what cfg asks for. The servers run as separate processes, one core's
// worth each (GOMAXPROCS=1): ai-webhook built from the repository, the reference and the
// no-op server as this program re-executed (Child).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	rep := &Report{Machine: thisMachine(), Date: time.Now(), LoadStart: loadAvg(), ServerCPUs: cfg.ServerCPUs, LoadCPUs: cfg.LoadCPUs}
	if cfg.Overload != nil && cfg.Throughput == nil {
		return nil, fmt.Errorf("B5 offers multiples of B1's saturated rates: run B1 (throughput) too")
	}
	fx, err := NewFixture(cfg.Root, cfg.Dir)
	if err != nil {
		return nil, err
	}
	if cfg.Throughput != nil || cfg.Overload != nil || len(cfg.PodCreates) > 0 {
		servers, err := startServers(ctx, cfg, fx)
		defer func() {
			for _, s := range servers {
				s.Stop()
			}
		}()
		if err != nil {
			return nil, err
		}
		if err := rep.runLoad(ctx, cfg, servers); err != nil {
			return nil, err
		}
		for _, pc := range cfg.PodCreates {
			res := RunPodCreates(ctx, fx, cfg.Root, pc, servers, cfg.Progress)
			rep.PodCreates = append(rep.PodCreates, res)
			if res.Skipped != "" {
				cfg.Progress(res.Skipped)
				break
			}
			if res.Err != nil {
				cfg.Progress(fmt.Sprintf("B4 (%s) failed: %v", res.Setup(), res.Err))
			}
		}
	}
	if cfg.BenchTime != "" {
		if rep.Micro, err = runMicro(fx, cfg); err != nil {
			return nil, fmt.Errorf("B2: %w", err)
		}
	}
	rep.Duration, rep.LoadEnd = time.Since(rep.Date), loadAvg()
	return rep, nil
}

// startServers starts ai-webhook, the reference, the no-op server and the no-op server
// with ai-webhook's patch, in that order.
func startServers(ctx context.Context, cfg Config, fx *Fixture) ([]*Server, error) {
	cfg.Progress("building ai-webhook")
	ours, err := repo.Build(cfg.Root, cfg.Dir, repo.Webhook)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var servers []*Server
	for _, kind := range []string{Ours, Reference, Noop, NoopPatch} {
		argv0, env := self, []string{"GOMAXPROCS=1", EnvChild + "=" + kind}
		if kind == Ours {
			argv0 = ours
		}
		s, err := StartServer(ctx, fx, kind, argv0, env)
		if err != nil {
			return servers, err
		}
		servers = append(servers, s)
		if cfg.ServerCPUs != nil {
			if err := pin(s.Proc.PID(), cpuSet(cfg.ServerCPUs)); err != nil {
				return servers, err
			}
		}
	}
	return servers, nil
}

// runLoad runs B1 and B5 with the load generator (this process) confined to cfg.LoadCPUs.
func (rep *Report) runLoad(ctx context.Context, cfg Config, servers []*Server) (err error) {
	unpin, err := PinSelf(cfg.LoadCPUs)
	if err != nil {
		return err
	}
	defer unpin()
	if cfg.Throughput != nil {
		if rep.Throughput, err = RunThroughput(ctx, *cfg.Throughput, servers[:3], cfg.Progress); err != nil {
			return fmt.Errorf("B1: %w", err)
		}
	}
	if cfg.Overload != nil {
		sat := map[string]float64{}
		for _, s := range rep.Throughput.Servers {
			sat[s.Name] = s.SatMedian()
		}
		if rep.Overload, err = RunOverload(ctx, *cfg.Overload, servers[:2], sat, cfg.Progress); err != nil {
			return fmt.Errorf("B5: %w", err)
		}
	}
	return nil
}

// runMicro runs B2 and B3 on one CPU with GOMAXPROCS=1.
func runMicro(fx *Fixture, cfg Config) ([]MicroRow, error) {
	undo, err := PinSelf(cfg.ServerCPUs)
	if err != nil {
		return nil, err
	}
	defer undo()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	restore, err := setBenchTime(cfg.BenchTime)
	if err != nil {
		return nil, fmt.Errorf("benchtime: %w", err)
	}
	defer restore()
	return RunMicro(Impls(fx.Profiles), Shapes(fx.Typical), cfg.Progress)
}

// EnvChild makes a benchmark binary (the test binary, benchrun) act as the server kind
// it names instead (Child), so a server can run as a process without a binary of its own.
const EnvChild = "AI_WEBHOOK_BENCH_CHILD"

// Child runs the server EnvChild names, if any, with this process's arguments, and exits;
// a benchmark binary calls it first thing.
func Child() {
	var err error
	switch kind := os.Getenv(EnvChild); kind {
	case "":
		return
	case Reference:
		err = reference.Main(os.Args[1:])
	case Noop, NoopPatch:
		err = NoopMain(os.Args[1:])
	default:
		err = fmt.Errorf("%s=%q: unknown server kind", EnvChild, kind)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Getenv(EnvChild), err)
		os.Exit(1)
	}
	os.Exit(0)
}
