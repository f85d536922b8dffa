// Command benchrun is `make bench`: it builds ai-webhook, measures it and the
// controller-runtime reference (B1 and B5 over TLS, B2/B3 in-process, B4 through a real API
// server when bin/ has one), prints the report and rewrites BENCHMARKS.md (-out).
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
	"strings"
	"time"

	"github.com/ai-webhook/ai-webhook/test/bench"
	"github.com/ai-webhook/ai-webhook/test/internal/repo"
)

var (
	out  = flag.String("out", "", "rewrite this BENCHMARKS.md (the generated part); empty: only print")
	only = flag.String("only", "throughput,cost,creates,overload", "parts to run: throughput (B1), admission cost (B2, with the B3 floor), Pod creates (B4), overload (B5: 2x and 5x the higher saturated rate)")
	keep = flag.Bool("keep", false, "keep the scratch directory (server logs)")
)

func main() {
	bench.Child() // re-executed as the reference or the no-op server
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func progress(msg string) { fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), msg) }

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root, err := repo.Root(".")
	if err != nil {
		return err
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
	cfg := bench.Config{Root: root, Dir: scratch, Progress: progress}
	if cfg.ServerCPUs, cfg.LoadCPUs, err = bench.CPULayout(); err != nil {
		return err
	}
	parts := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		parts[strings.TrimSpace(p)] = true
	}
	const step = 4 * time.Second // of each B1 and B5 phase
	if parts["throughput"] {
		cfg.Throughput = &bench.ThroughputConfig{Rounds: 3, Step: step, Warmup: 2 * time.Second, Concurrency: 25,
			Rates: []int{500, 1000, 2000}, MaxRequests: 1 << 20, MaxInFlight: 2000, Settle: 200 * time.Millisecond}
	}
	if parts["overload"] {
		cfg.Overload = &bench.OverloadConfig{Multiples: []int{2, 5}, Step: step, MaxInFlight: 2000, Settle: 2 * time.Second}
	}
	if parts["cost"] {
		cfg.BenchTime = "1s" // per case
	}
	if parts["creates"] {
		for _, noFsync := range []bool{false, true} {
			cfg.PodCreates = append(cfg.PodCreates, bench.PodCreateConfig{Rounds: 5, Pods: 100, NoFsync: noFsync})
		}
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Command = strings.TrimSpace("go run ./test/bench/cmd/benchrun " + strings.Join(os.Args[1:], " "))
	var md bytes.Buffer
	rep.Markdown(&md)
	fmt.Print(md.String())
	if *out == "" {
		return nil
	}
	old, err := os.ReadFile(*out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	progress("writing " + *out)
	return os.WriteFile(*out, []byte(bench.Splice(string(old), md.String())), 0o644)
}
