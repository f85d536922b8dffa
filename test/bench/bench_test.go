package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ai-webhook/ai-webhook/test/internal/repo"
)

func TestMain(m *testing.M) {
	Child() // re-executed as the reference or the no-op server
	os.Exit(m.Run())
}

// TestBenchSmoke runs every benchmark path once, briefly, with the real ai-webhook binary,
// and checks the answers are right. It asserts correctness only, never timing.
func TestBenchSmoke(t *testing.T) {
	root, err := repo.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := Config{Root: root, Dir: t.TempDir(), Progress: func(string) {}, BenchTime: "1x",
		Throughput: &ThroughputConfig{Rounds: 1, Step: 60 * time.Millisecond, Warmup: 20 * time.Millisecond, Concurrency: 4,
			Rates: []int{200}, MaxRequests: 1000, MaxInFlight: 100},
		Overload: &OverloadConfig{Multiples: []int{2, 5}, Step: 60 * time.Millisecond, MaxInFlight: 100},
	}
	// -short is the one explicit opt-out: the caller asks to leave out the part that starts
	// etcd and kube-apiserver, and the subtest's skip says so. Without it, missing binaries
	// fail the test (nothing is skipped silently).
	if !testing.Short() {
		cfg.PodCreates = []PodCreateConfig{{Rounds: 1, Pods: 2}}
	}
	rep, err := Run(ctx, cfg) // starting each server checks a full answer
	if err != nil {
		t.Fatal(err)
	}

	t.Run("throughput", func(t *testing.T) {
		for _, s := range rep.Throughput.Servers {
			if failed, _, first := s.Failures(); failed > 0 {
				t.Errorf("%s: %d requests failed, first: %v", s.Name, failed, first)
			}
			if len(s.SatRPS) != 1 || len(s.Sat.Lat) == 0 {
				t.Errorf("%s: no saturation figures: %+v", s.Name, s)
			}
			if o := s.OpenAt(200); o == nil || len(o.Lat) == 0 {
				t.Errorf("%s: no open-loop figures at 200/s", s.Name)
			}
			if s.PeakRSS <= 0 {
				t.Errorf("%s: peak RSS not read", s.Name)
			}
		}
	})

	t.Run("overload", func(t *testing.T) {
		if len(rep.Overload.Rows) != 4 {
			t.Fatalf("%d overload rows, want 2 servers x 2 multiples", len(rep.Overload.Rows))
		}
		for _, f := range rep.Overload.Rows {
			if f.Offered <= 0 || f.Rate() <= 0 || len(f.Lat) == 0 || f.PeakRSS <= 0 {
				t.Errorf("%s at %dx: nothing measured: %+v", f.Server, f.Multiple, f)
			}
		}
	})

	t.Run("admission cost", func(t *testing.T) {
		// RunMicro checked every answer before timing it (verify).
		for _, s := range []series{envSeries, containerSeries} {
			for _, key := range s.keys {
				for _, impl := range []string{Ours, Reference, Floor} {
					if rep.micro(key, impl) == nil {
						t.Errorf("no figures for %s on %s", impl, key)
					}
				}
			}
		}
	})

	t.Run("Pod creates", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: B4 starts a control plane (bin/etcd, bin/kube-apiserver); run without -short to include it")
		}
		res := rep.PodCreates[0]
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
