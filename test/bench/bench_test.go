package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ai-webhook/ai-webhook/test/bench/reference"
	"github.com/ai-webhook/ai-webhook/test/cluster"
	"github.com/ai-webhook/ai-webhook/test/internal/repo"
	"github.com/ai-webhook/ai-webhook/webhook/server"
)

func TestMain(m *testing.M) {
	switch os.Getenv(EnvChild) {
	case "":
		os.Exit(m.Run())
	case Ours:
		exit(serveOurs(os.Args[1:]))
	case Reference:
		exit(reference.Main(os.Args[1:]))
	case Noop:
		exit(NoopMain(os.Args[1:]))
	}
	exit(fmt.Errorf("%s=%q: unknown server kind", EnvChild, os.Getenv(EnvChild)))
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveOurs is `ai-webhook serve` built from the same server package (the benchmark itself
// runs the real binary).
func serveOurs(args []string) error {
	if len(args) == 0 || args[0] != "serve" {
		return errors.New("usage: serve [flags]")
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := server.Defaults()
	fs.StringVar(&cfg.Listen, "listen", "", "")
	fs.StringVar(&cfg.CertFile, "tls-cert-file", "", "")
	fs.StringVar(&cfg.KeyFile, "tls-key-file", "", "")
	fs.StringVar(&cfg.ProfilesFile, "profiles-file", "", "")
	fs.StringVar(&cfg.Domain, "domain", "", "")
	fs.DurationVar(&cfg.ShutdownDelay, "shutdown-delay", 0, "")
	fs.String("log-level", "info", "")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg.ReloadInterval = 2 * time.Second
	srv, err := server.New(cfg, slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	return srv.Run(ctx, nil)
}

func self(kind string) cluster.Command {
	return cluster.Command{Argv: []string{os.Args[0]}, Env: []string{EnvChild + "=" + kind}}
}

// TestBenchSmoke runs every benchmark path once, briefly, and checks the answers are
// right. It asserts correctness only, never timing.
func TestBenchSmoke(t *testing.T) {
	root, err := repo.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fx, err := NewFixture(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	var servers []*Server
	for _, kind := range []string{Ours, Reference, Noop, NoopPatch} {
		l := self(kind)
		if kind == NoopPatch {
			l = self(Noop)
		}
		s, err := StartServer(ctx, fx, kind, l) // StartServer checks a full answer
		if err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		servers = append(servers, s)
	}

	rep := &Report{Machine: ThisMachine(), Date: time.Now(), Command: "go test", LoadStart: LoadAvg()}
	t.Run("throughput", func(t *testing.T) {
		cfg := ThroughputConfig{Rounds: 1, Step: 60 * time.Millisecond, Warmup: 20 * time.Millisecond, Concurrency: 4,
			Rates: []int{200}, MaxRequests: 1000, MaxInFlight: 100}
		res, err := RunThroughput(ctx, cfg, servers[:3], func(string) {})
		if err != nil {
			t.Fatal(err)
		}
		rep.Throughput = res
		for _, s := range res.Servers {
			if s.Failed > 0 {
				t.Errorf("%s: %d requests failed, first: %v", s.Name, s.Failed, s.Err)
			}
			if len(s.SatRPS) != 1 || s.SatLat.N == 0 {
				t.Errorf("%s: no saturation figures: %+v", s.Name, s)
			}
			if o := s.OpenAt(200); o == nil || o.Lat.N == 0 {
				t.Errorf("%s: no open-loop figures at 200/s", s.Name)
			}
			if s.PeakRSS <= 0 {
				t.Errorf("%s: peak RSS not read", s.Name)
			}
		}
	})

	t.Run("overload", func(t *testing.T) {
		sat := map[string]float64{}
		if rep.Throughput != nil {
			for _, s := range rep.Throughput.Servers {
				sat[s.Name] = s.SatMedian()
			}
		}
		cfg := OverloadConfig{Multiples: []int{2, 5}, Step: 60 * time.Millisecond, Concurrency: 4, MaxRequests: 1000, MaxInFlight: 100}
		res, err := RunOverload(ctx, cfg, servers[:2], sat, func(string) {})
		if err != nil {
			t.Fatal(err)
		}
		rep.Overload = res
		if len(res.Rows) != 4 {
			t.Fatalf("%d overload rows, want 2 servers x 2 multiples", len(res.Rows))
		}
		for _, f := range res.Rows {
			if f.Offered <= 0 || f.Accepted <= 0 || f.Lat.N == 0 || f.PeakRSS <= 0 {
				t.Errorf("%s at %dx: nothing measured: %+v", f.Server, f.Multiple, f)
			}
		}
	})

	t.Run("admission cost", func(t *testing.T) {
		main, envs, ctrs := Shapes(fx.Example)
		impls := Impls(fx.Profiles)
		if err := VerifyImpls(impls, Dedupe(main, envs, ctrs)); err != nil {
			t.Fatal(err)
		}
		restore, err := SetBenchTime("1x")
		if err != nil {
			t.Fatal(err)
		}
		defer restore()
		rows, err := RunMicro(impls, main[:1], func(string) {})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(impls) {
			t.Fatalf("%d rows, want %d", len(rows), len(impls))
		}
		rep.Micro = rows
	})

	t.Run("Pod creates", func(t *testing.T) {
		// -short is the one explicit opt-out: the caller asks to leave out the part that
		// starts etcd and kube-apiserver, and the skip says so. Without it, missing
		// binaries fail the test (nothing is skipped silently).
		if testing.Short() {
			t.Skip("-short: B4 starts a control plane (bin/etcd, bin/kube-apiserver); run without -short to include it")
		}
		res := RunPodCreates(ctx, fx, root, PodCreateConfig{Rounds: 1, Pods: 2}, servers, func(string) {})
		if res.Skipped != "" {
			t.Fatalf("%s: run `make tools` in %s to build the control plane from Go modules (or pass -short to leave B4 out)", res.Skipped, root)
		}
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		for _, c := range res.Conds {
			if c.Failed > 0 || c.Lat.N != 2 {
				t.Errorf("%s: %d creates timed, %d failed, first error: %v", c.Name, c.Lat.N, c.Failed, c.Err)
			}
		}
		rep.PodCreates = []*PodCreateResult{res}
	})

	t.Run("Report", func(t *testing.T) {
		var md strings.Builder
		rep.Markdown(&md)
		for _, want := range []string{"## Targets", "| Saturated throughput vs reference |", "## B1", "## B2", "## B4", "## B5"} {
			if !strings.Contains(md.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, md.String())
			}
		}
	})
}

// TestSpliceKeepsTextOutsideMarkers protects hand-written history in BENCHMARKS.md.
func TestSpliceKeepsTextOutsideMarkers(t *testing.T) {
	old := "# Benchmarks\n\nintro\n\n" + BeginMarker + "\nold figures\n" + EndMarker + "\n\n## History\nbefore/after\n"
	got := Splice(old, "new figures\n")
	want := "# Benchmarks\n\nintro\n\n" + BeginMarker + "\nnew figures\n" + EndMarker + "\n\n## History\nbefore/after\n"
	if got != want {
		t.Errorf("Splice:\n%s\nwant:\n%s", got, want)
	}
	if got := Splice("", "figures\n"); !strings.HasPrefix(got, "# Benchmarks\n") || !strings.Contains(got, "figures\n"+EndMarker) {
		t.Errorf("Splice into an empty file: %q", got)
	}
}
