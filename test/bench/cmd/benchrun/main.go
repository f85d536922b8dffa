// Command benchrun is `make bench`: it builds ai-webhook and the controller-runtime
// reference, measures both (B1 over TLS, B2/B3 in-process, B4 through a real API server
// when bin/ has one), prints the report and rewrites BENCHMARKS.md (-out).
//
//	go run ./test/bench/cmd/benchrun -out test/bench/BENCHMARKS.md
//
// Run it from the repository root on an otherwise idle machine; the figures are only as
// good as the quiet around them.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ai-webhook/ai-webhook/test/bench"
	"github.com/ai-webhook/ai-webhook/test/cluster"
	"github.com/ai-webhook/ai-webhook/test/internal/repo"
)

var (
	out          = flag.String("out", "", "rewrite this BENCHMARKS.md (the generated part); empty: only print")
	rounds       = flag.Int("rounds", 3, "B1: alternating rounds")
	step         = flag.Duration("step", 4*time.Second, "B1: length of each phase")
	warmup       = flag.Duration("warmup", 2*time.Second, "B1: closed-loop warm-up per server")
	concurrency  = flag.Int("concurrency", 25, "B1: closed-loop connections")
	rateList     = flag.String("rates", "500,1000,2000", "B1: open-loop rates, requests/s")
	benchtime    = flag.String("benchtime", "1s", "B2/B3: time per case (testing's -benchtime syntax)")
	createRounds = flag.Int("create-rounds", 5, "Pod creates (B4): rounds")
	createPods   = flag.Int("create-pods", 100, "Pod creates (B4): Pods per condition per round")
	only         = flag.String("only", "throughput,cost,creates,overload", "parts to run: throughput (B1), admission cost (B2, with the B3 floor), Pod creates (B4), overload (B5: 2x and 5x the higher saturated rate)")
	profileDir   = flag.String("profile", "", "instead of benchmarking, write pprof CPU and allocation profiles of ai-webhook's handler and server here")
	keep         = flag.Bool("keep", false, "keep the scratch directory (server logs)")
	timeout      = flag.Duration("timeout", 20*time.Minute, "give up after this long")
)

func main() {
	if os.Getenv(bench.EnvChild) == bench.Noop {
		// Re-executed as the no-op calibration server (see bench.NoopMain).
		if err := bench.NoopMain(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "no-op server:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func progress(msg string) { fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), msg) }

func run() error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	root, err := repo.Root(".")
	if err != nil {
		return err
	}
	var rates []int
	for _, s := range strings.Split(*rateList, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r <= 0 {
			return fmt.Errorf("-rates: %q is not a positive number", s)
		}
		rates = append(rates, r)
	}
	parts := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		parts[strings.TrimSpace(p)] = true
	}
	scratch, err := os.MkdirTemp("", "ai-webhook-bench-")
	if err != nil {
		return err
	}
	if *keep {
		progress("scratch directory (kept): " + scratch)
	} else {
		defer os.RemoveAll(scratch)
	}

	rep := &bench.Report{Machine: bench.ThisMachine(), Date: start, Command: command(), LoadStart: bench.LoadAvg()}
	serverCPU, loadCPU, err := cpuLayout()
	if err != nil {
		return err
	}
	if serverCPU >= 0 {
		rep.ServerCPUs, rep.LoadCPUs, rep.MicroCPUs = []int{serverCPU}, []int{loadCPU}, []int{serverCPU}
	} else {
		rep.Notes = append(rep.Notes, "Only one CPU: servers and load generator were not confined to separate CPUs.")
	}
	fx, err := bench.NewFixture(root, scratch)
	if err != nil {
		return err
	}

	if *profileDir != "" {
		// Alone, so the allocation profile holds nothing but the profiled work.
		if err := os.MkdirAll(*profileDir, 0o755); err != nil {
			return err
		}
		progress("profiling ai-webhook's handler and server into " + *profileDir)
		return bench.Profile(ctx, fx, *profileDir, progress)
	}
	if parts["throughput"] || parts["creates"] || parts["overload"] {
		progress("building ai-webhook and the reference")
		ours, ref := filepath.Join(scratch, "ai-webhook"), filepath.Join(scratch, "reference")
		for bin, pkg := range map[string]string{ours: "./webhook/cmd/ai-webhook", ref: "./test/bench/cmd/reference"} {
			cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			}
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		var servers []*bench.Server
		for _, k := range []struct{ kind, bin string }{{bench.Ours, ours}, {bench.Reference, ref}, {bench.Noop, self}, {bench.NoopPatch, self}} {
			cmd := cluster.Command{Argv: []string{k.bin}, Env: []string{"GOMAXPROCS=" + strconv.Itoa(max(1, len(rep.ServerCPUs)))}, CPUs: rep.ServerCPUs}
			if k.bin == self {
				cmd.Env = append(cmd.Env, bench.EnvChild+"="+bench.Noop)
			}
			s, err := bench.StartServer(ctx, fx, k.kind, cmd)
			if err != nil {
				return err
			}
			defer s.Stop()
			servers = append(servers, s)
		}
		if parts["throughput"] {
			cfg := bench.ThroughputConfig{Rounds: *rounds, Step: *step, Warmup: *warmup, Concurrency: *concurrency, Rates: rates,
				MaxRequests: 1 << 20, MaxInFlight: 2000, LoadCPUs: rep.LoadCPUs, Settle: 200 * time.Millisecond}
			if rep.Throughput, err = bench.RunThroughput(ctx, cfg, servers[:3], progress); err != nil {
				return fmt.Errorf("B1: %w", err)
			}
		}
		if parts["overload"] {
			sat := map[string]float64{}
			if rep.Throughput != nil {
				for _, s := range rep.Throughput.Servers {
					sat[s.Name] = s.SatMedian()
				}
			}
			cfg := bench.OverloadConfig{Multiples: []int{2, 5}, Step: *step, Concurrency: *concurrency, MaxRequests: 1 << 20,
				MaxInFlight: 2000, LoadCPUs: rep.LoadCPUs, Settle: 2 * time.Second}
			if rep.Overload, err = bench.RunOverload(ctx, cfg, servers[:2], sat, progress); err != nil {
				return fmt.Errorf("B5: %w", err)
			}
		}
		if parts["creates"] {
			for _, noFsync := range []bool{false, true} {
				creates := bench.RunPodCreates(ctx, fx, root, bench.PodCreateConfig{Rounds: *createRounds, Pods: *createPods, NoFsync: noFsync}, servers, progress)
				rep.PodCreates = append(rep.PodCreates, creates)
				if creates.Skipped != "" {
					progress(creates.Skipped)
					break
				}
				if creates.Err != nil {
					progress(fmt.Sprintf("B4 (%s) failed: %v", creates.Setup(), creates.Err))
				}
			}
		}
		for _, s := range servers {
			s.Stop()
		}
	}

	if parts["cost"] {
		if err := micro(rep, fx, progress); err != nil {
			return err
		}
	}

	rep.Duration, rep.LoadEnd = time.Since(start), bench.LoadAvg()
	var md bytes.Buffer
	rep.Markdown(&md)
	fmt.Print(md.String())
	if *out != "" {
		old, err := os.ReadFile(*out)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.WriteFile(*out, []byte(bench.Splice(string(old), md.String())), 0o644); err != nil {
			return err
		}
		progress("wrote " + *out)
	}
	return nil
}

// micro runs B2 and B3 on one CPU with GOMAXPROCS=1.
func micro(rep *bench.Report, fx *bench.Fixture, progress func(string)) error {
	if len(rep.MicroCPUs) > 0 {
		undo, err := bench.PinSelf(rep.MicroCPUs)
		if err != nil {
			return err
		}
		defer undo()
	} else {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	restore, err := bench.SetBenchTime(*benchtime)
	if err != nil {
		return fmt.Errorf("-benchtime: %w", err)
	}
	defer restore()
	main, envs, ctrs := bench.Shapes(fx.Example)
	shapes := bench.Dedupe(main, envs, ctrs)
	impls := bench.Impls(fx.Profiles)
	progress("B2/B3 checking every answer")
	if err := bench.VerifyImpls(impls, shapes); err != nil {
		return fmt.Errorf("B2: %w", err)
	}
	if rep.Micro, err = bench.RunMicro(impls, shapes, progress); err != nil {
		return fmt.Errorf("B2: %w", err)
	}
	keys := func(s []bench.Shape) []string {
		var k []string
		for _, x := range s {
			k = append(k, x.Key)
		}
		return k
	}
	rep.EnvSeries, rep.CtrSeries = keys(envs), keys(ctrs)
	return nil
}

// cpuLayout picks, from the CPUs this process may use, the last for the servers (and
// B2/B3) and the first for the load generator; -1 when there is only one.
func cpuLayout() (server, load int, err error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, 0, err
	}
	var cpus []int
	for c := range 1024 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		return -1, -1, nil
	}
	return slices.Max(cpus), slices.Min(cpus), nil
}

// command is how this run was invoked, for the report.
func command() string {
	return strings.TrimSpace("go run ./test/bench/cmd/benchrun " + strings.Join(os.Args[1:], " "))
}
