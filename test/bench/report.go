package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// Targets of the benchmark issue.
const (
	TargetThroughputRatio = 2.0                  // saturated throughput, ours/reference, at least
	TargetP99At1000       = 2 * time.Millisecond // p99 at 1,000 requests/s, under
	TargetFloorRatio      = 1.5                  // handler time / decode-encode floor, typical Pod, at most
	TargetSlopeRatio      = 1.5                  // linear growth: marginal cost of the last step / of the first, at most
	TargetPeakRSS         = 40 << 20             // bytes, under
	TargetAPIOverhead     = 0.20                 // API server Pod-create p50 overhead, under
)

// Report is everything one run measured.
type Report struct {
	Machine    string // CPU model and count, OS, kernel, Go version
	Date       time.Time
	Command    string
	Duration   time.Duration
	ServerCPUs []int              // CPUs each server (and B2/B3) was confined to
	LoadCPUs   []int              // CPUs the load generator was confined to in B1 and B5
	Throughput *ThroughputResult  // B1
	Overload   *OverloadResult    // B5
	Micro      []MicroRow         // B2 and B3
	PodCreates []*PodCreateResult // B4: etcd syncing (as a real cluster), then etcd --unsafe-no-fsync
	LoadStart  string             // /proc/loadavg when the run began
	LoadEnd    string             // and when it ended
}

// thisMachine reads /proc for the CPU model and kernel.
func thisMachine() string {
	cpu, kernel := "unknown", ""
	if info, err := procfs.NewDefaultFS(); err == nil {
		if cpus, err := info.CPUInfo(); err == nil && len(cpus) > 0 {
			cpu = cpus[0].ModelName
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, %d CPUs, %s/%s, Linux %s; %s", cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, kernel, runtime.Version())
}

// loadAvg is the 1, 5 and 15 minute load averages: a busy machine makes every figure worse.
func loadAvg() string {
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if l, err := fs.LoadAvg(); err == nil {
			return fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
		}
	}
	return "unknown"
}

func (r *Report) micro(shape, impl string) *MicroRow {
	i := slices.IndexFunc(r.Micro, func(m MicroRow) bool { return m.Shape.Key == shape && m.Impl == impl })
	if i < 0 {
		return nil
	}
	return &r.Micro[i]
}

// slopes are the marginal costs, in ns per unit (env var or container), between
// consecutive points of a series, for impl.
func (r *Report) slopes(s series, impl string) []float64 {
	var out []float64
	for i := 1; i < len(s.keys); i++ {
		if v := r.marginal(s, impl, s.keys[i-1], s.keys[i]); v != nil {
			out = append(out, *v)
		}
	}
	return out
}

// marginal is the cost per unit from shape a to shape b; nil when either was not measured
// or they are the same size.
func (r *Report) marginal(s series, impl, a, b string) *float64 {
	ma, mb := r.micro(a, impl), r.micro(b, impl)
	if ma == nil || mb == nil || s.unit(ma.Shape) == s.unit(mb.Shape) {
		return nil
	}
	v := (mb.NsPerOp() - ma.NsPerOp()) / float64(s.unit(mb.Shape)-s.unit(ma.Shape))
	return &v
}

// spanGrowth judges linearity on two wide spans instead of neighbouring steps: the marginal
// cost from the middle size to the largest over that from the smallest to the middle. A step
// of a few units between two similar times is mostly noise; spans of half the range are not,
// and a quadratic cost still shows (about 2.5x for 2 -> 10 -> 20 containers).
func (r *Report) spanGrowth(s series, impl string) float64 {
	mid := s.keys[len(s.keys)/2]
	lower, upper := r.marginal(s, impl, s.keys[0], mid), r.marginal(s, impl, mid, s.keys[len(s.keys)-1])
	if lower == nil || upper == nil || *lower <= 0 {
		return 0
	}
	return *upper / *lower
}

func findServer(tr *ThroughputResult, name string) *ServerFigures {
	if tr == nil {
		return nil
	}
	i := slices.IndexFunc(tr.Servers, func(s *ServerFigures) bool { return s.Name == name })
	if i < 0 {
		return nil
	}
	return tr.Servers[i]
}

// target is one line of the targets table; value is empty when the part was not run.
type target struct {
	name, goal, value string
	met               bool
}

// targets evaluates the targets for ai-webhook.
func (r *Report) targets() []target {
	ours, ref := findServer(r.Throughput, Ours), findServer(r.Throughput, Reference)
	throughput := target{name: "Saturated throughput vs reference", goal: fmt.Sprintf(">= %.1fx", TargetThroughputRatio)}
	if ours != nil && ref != nil && ref.SatMedian() > 0 {
		ratio := ours.SatMedian() / ref.SatMedian()
		throughput.met, throughput.value = ratio >= TargetThroughputRatio, fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", ratio, ours.SatMedian(), ref.SatMedian())
	}
	p99 := target{name: "p99 at 1,000 req/s", goal: "< " + fmtDur(TargetP99At1000)}
	if o := ours.OpenAt(1000); o != nil {
		p99.met, p99.value = o.Percentiles().P99 < TargetP99At1000 && o.Failed == 0, fmtDur(o.Percentiles().P99)
	}
	floor := target{name: "Handler time vs decode/encode floor (typical Pod)", goal: fmt.Sprintf("<= %.1fx", TargetFloorRatio)}
	if o, f := r.micro("typical", Ours), r.micro("typical", Floor); o != nil && f != nil {
		ratio := o.NsPerOp() / f.NsPerOp()
		floor.met, floor.value = ratio <= TargetFloorRatio, fmt.Sprintf("%.2fx (%s vs %s)", ratio, fmtNs(o.NsPerOp()), fmtNs(f.NsPerOp()))
	}
	growth := target{name: "Linear growth with Pod size", goal: fmt.Sprintf("marginal cost, upper half of the sizes / lower half <= %.1fx", TargetSlopeRatio)}
	if e, c := r.spanGrowth(envSeries, Ours), r.spanGrowth(containerSeries, Ours); e > 0 && c > 0 {
		growth.met, growth.value = e <= TargetSlopeRatio && c <= TargetSlopeRatio, fmt.Sprintf("env vars %.2fx, containers %.2fx", e, c)
	}
	rss := target{name: "Peak RSS under load", goal: "< " + fmtMiB(TargetPeakRSS)}
	if ours != nil {
		rss.met, rss.value = ours.PeakRSS < TargetPeakRSS, fmtMiB(ours.PeakRSS)
	}
	api := target{name: "API server Pod-create p50 overhead", goal: fmt.Sprintf("< %.0f%%", TargetAPIOverhead*100)}
	var vals []string
	for i, b := range r.PodCreates {
		if ov, ok := b.overhead(Ours, NoWebhook); ok {
			vals = append(vals, fmt.Sprintf("%+.1f%% (%s)", ov*100, b.Setup()))
			// The target is judged on the control plane as clusters run it, the first.
			api.met = api.met || i == 0 && ov < TargetAPIOverhead
		}
	}
	api.value = strings.Join(vals, "; ")
	return []target{throughput, p99, floor, growth, rss, api}
}

// overhead is the p50 create latency with server name registered over that under base,
// minus 1.
func (b *PodCreateResult) overhead(name, base string) (float64, bool) {
	if b == nil || b.Skipped != "" || b.Err != nil {
		return 0, false
	}
	bc, with := b.p50(base), b.p50(name)
	if bc == 0 || with == 0 {
		return 0, false
	}
	return float64(with)/float64(bc) - 1, true
}

// p50 is the median create latency under the condition name, 0 when not measured.
func (b *PodCreateResult) p50(name string) time.Duration {
	if i := slices.IndexFunc(b.Conds, func(c PodCreateCondition) bool { return c.Name == name }); i >= 0 {
		return b.Conds[i].Lat.P50
	}
	return 0
}

// Setup names the etcd configuration.
func (b *PodCreateResult) Setup() string {
	if b.Config.NoFsync {
		return "etcd --unsafe-no-fsync"
	}
	return "etcd syncing to disk"
}

// Markdown writes the report: the figures and the parameters of this run. How each part
// is measured is written once, in the hand-written part of BENCHMARKS.md.
func (r *Report) Markdown(w io.Writer) {
	p := printer(func(format string, a ...any) { fmt.Fprintf(w, format, a...) })
	p("Generated by `%s` on %s in %s.\n\n", r.Command, r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Duration.Round(time.Second))
	p("Machine: %s. Load average (1, 5, 15 min) at start %s, at end %s.\n\n", r.Machine, r.LoadStart, r.LoadEnd)
	p("## Targets\n\n")
	p.head("Target", "Goal", "ai-webhook", "Met")
	for _, t := range r.targets() {
		met, val := "no", t.value
		switch {
		case val == "":
			met, val = "not measured", "-"
		case t.met:
			met = "yes"
		}
		p("| %s | %s | %s | %s |\n", t.name, t.goal, val, met)
	}
	p("\n")
	r.markdownThroughput(p)
	r.markdownMicro(p)
	r.markdownPodCreates(p)
	r.markdownOverload(p)
}

type printer func(format string, a ...any)

// section prints a benchmark's heading, and "Not run." under it when it did not run; it
// reports whether there are results to print.
func (p printer) section(title string, ran bool) bool {
	p("## %s\n\n", title)
	if !ran {
		p("Not run.\n\n")
	}
	return ran
}

// head prints a table's header row and the rule under it.
func (p printer) head(columns ...string) {
	p("| %s |\n|%s\n", strings.Join(columns, " | "), strings.Repeat("---|", len(columns)))
}

// firstErrors prints each non-nil error as "First <what>: `err`".
func (p printer) firstErrors(what func(i int) (string, error), n int) {
	for i := range n {
		if s, err := what(i); err != nil {
			p("First %s: `%.300v`\n\n", s, err)
		}
	}
}

func (r *Report) markdownThroughput(p printer) {
	b := r.Throughput
	if !p.section("B1: the handler as the API server calls it", b != nil) {
		return
	}
	c := b.Config
	p("Servers confined to CPU %v (GOMAXPROCS=1), the load generator to CPU %v, of %d. Closed loop: %d connections. "+
		"%d alternating rounds of %s per phase after a %s warm-up.\n\n",
		cpus(r.ServerCPUs), cpus(r.LoadCPUs), runtime.NumCPU(), c.Concurrency, c.Rounds, c.Step, c.Warmup)
	ours, ref, nop := findServer(b, Ours), findServer(b, Reference), findServer(b, Noop)
	if ours == nil || ref == nil {
		return
	}
	p("| | ai-webhook | reference | ours/reference | no-op (transport only) |\n|---|---|---|---|---|\n")
	row := func(name string, f func(*ServerFigures) string, oursRef string) {
		n := "-"
		if nop != nil {
			n = f(nop)
		}
		p("| %s | %s | %s | %s | %s |\n", name, f(ours), f(ref), oursRef, n)
	}
	durs := func(name string, get func(*ServerFigures) []time.Duration) { // each figure formatted, and its ratio
		var ratios []string
		for i, d := range get(ours) {
			ratios = append(ratios, ratio(float64(d), float64(get(ref)[i])))
		}
		row(name, func(s *ServerFigures) string {
			var parts []string
			for _, d := range get(s) {
				parts = append(parts, fmtDur(d))
			}
			return strings.Join(parts, " / ")
		}, strings.Join(ratios, " / "))
	}
	row(fmt.Sprintf("saturated req/s, median (min-max), concurrency %d", c.Concurrency), func(s *ServerFigures) string { return fmtRPS(s.SatRPS) },
		ratio(ours.SatMedian(), ref.SatMedian()))
	durs("latency at saturation p50 / p99", func(s *ServerFigures) []time.Duration {
		return []time.Duration{s.Sat.Percentiles().P50, s.Sat.Percentiles().P99}
	})
	durs("CPU per request at saturation", func(s *ServerFigures) []time.Duration { return []time.Duration{s.Sat.cpuPerReq()} })
	row("server CPU at saturation (cores)", func(s *ServerFigures) string { return fmt.Sprintf("%.2f", s.Sat.cores(s.Sat.ServerCPU)) }, "")
	// Near 1.0 with a confined generator: the generator, not the server, may have been the limit.
	row("load generator CPU at saturation (cores)", func(s *ServerFigures) string { return fmt.Sprintf("%.2f", s.Sat.cores(s.Sat.LoadCPU)) }, "")
	for _, rate := range c.Rates {
		durs(fmt.Sprintf("**%d req/s**: p50 / p99 / p99.9", rate), func(s *ServerFigures) []time.Duration {
			l := s.OpenAt(rate).Percentiles()
			return []time.Duration{l.P50, l.P99, l.P999}
		})
		row(fmt.Sprintf("%d req/s: answered/s; CPU per request", rate), func(s *ServerFigures) string {
			return fmt.Sprintf("%.0f; %s", s.OpenAt(rate).Rate(), fmtDur(s.OpenAt(rate).cpuPerReq()))
		}, ratio(float64(ours.OpenAt(rate).cpuPerReq()), float64(ref.OpenAt(rate).cpuPerReq())))
	}
	row("peak RSS (VmHWM)", func(s *ServerFigures) string { return fmtMiB(s.PeakRSS) }, ratio(float64(ours.PeakRSS), float64(ref.PeakRSS)))
	row("failed / dropped requests", failures, "")
	p("\n")
	p.firstErrors(func(i int) (string, error) {
		_, _, err := b.Servers[i].Failures()
		return "error of " + b.Servers[i].Name, err
	}, len(b.Servers))
}

func failures(s *ServerFigures) string {
	failed, dropped, _ := s.Failures()
	return fmt.Sprintf("%d / %d", failed, dropped)
}

func fmtRPS(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f (%.0f-%.0f)", (&ServerFigures{SatRPS: v}).SatMedian(), slices.Min(v), slices.Max(v))
}

func (r *Report) markdownMicro(p printer) {
	if !p.section("B2: Pod shapes, and B3: the decode/encode floor", len(r.Micro) > 0) {
		return
	}
	p("In-process on CPU %v with GOMAXPROCS=1; CPU time per admission (ai-webhook's wall time beside it).\n\n", cpus(r.ServerCPUs))
	p.head("Pod", "review bytes", "ai-webhook", "(wall)", "reference", "floor", "ours/floor", "ours/reference", "ai-webhook allocs, KiB", "reference allocs, KiB")
	for _, o := range r.Micro { // in the order measured: the main shapes, then the growth series
		ref, f := r.micro(o.Shape.Key, Reference), r.micro(o.Shape.Key, Floor)
		if o.Impl != Ours || ref == nil || f == nil {
			continue
		}
		kib := func(m *MicroRow) float64 { return float64(m.Result.AllocedBytesPerOp()) / 1024 }
		p("| %s | %d | %s | %s | %s | %s | %.2fx | %s | %d, %.0f | %d, %.0f |\n", o.Shape.Title, o.Bytes, fmtNs(o.NsPerOp()), fmtNs(o.WallNsPerOp()),
			fmtNs(ref.NsPerOp()), fmtNs(f.NsPerOp()), o.NsPerOp()/f.NsPerOp(), ratio(o.NsPerOp(), ref.NsPerOp()),
			o.Result.AllocsPerOp(), kib(&o), ref.Result.AllocsPerOp(), kib(ref))
	}
	p("\n")
	p.head("series", "ai-webhook", "reference", "floor")
	for _, s := range []series{envSeries, containerSeries} {
		var cells, sizes []string
		for _, impl := range []string{Ours, Reference, Floor} {
			var parts []string
			for _, v := range r.slopes(s, impl) {
				parts = append(parts, fmtNs(v))
			}
			cells = append(cells, fmt.Sprintf("%s (upper/lower half %.2fx)", strings.Join(parts, ", "), r.spanGrowth(s, impl)))
		}
		for _, k := range s.keys {
			if m := r.micro(k, Ours); m != nil {
				sizes = append(sizes, fmt.Sprint(s.unit(m.Shape)))
			}
		}
		p("| %s, sizes %s | %s |\n", s.name, strings.Join(sizes, " → "), strings.Join(cells, " | "))
	}
	p("\n")
}

func (r *Report) markdownPodCreates(p printer) {
	if !p.section("B4: through the API server", len(r.PodCreates) > 0) {
		return
	}
	if b := r.PodCreates[0]; b.Skipped != "" {
		p("**%s** — no figures.\n\n", b.Skipped)
		return
	}
	p("The typical Pod created %d times per condition per round, in %d rounds.\n\n", r.PodCreates[0].Config.Pods, r.PodCreates[0].Config.Rounds)
	for _, b := range r.PodCreates {
		p("**%s**", b.Setup())
		if b.Err != nil {
			p(": failed: %v\n\n", b.Err)
			continue
		}
		p("\n\n")
		p.head("condition", "creates", "p50", "p99", "p50 overhead", "p50 over the no-op webhook", "failed")
		for _, c := range b.Conds {
			ov, over := "-", "-"
			if o, ok := b.overhead(c.Name, NoWebhook); ok && c.Name != NoWebhook {
				ov = fmt.Sprintf("%+.1f%%", o*100)
			}
			if o, ok := b.overhead(c.Name, Noop); ok && c.Name != NoWebhook && c.Name != Noop {
				over = fmt.Sprintf("%+.1f%%", o*100)
			}
			p("| %s | %d | %s | %s | %s | %s | %d |\n", c.Name, c.Lat.N, fmtDur(c.Lat.P50), fmtDur(c.Lat.P99), ov, over, c.Failed)
		}
		p("\n")
		// ai-webhook's p50 overhead split into calling a webhook, applying the patch and its own part.
		if none, noop, patch, ours := b.p50(NoWebhook), b.p50(Noop), b.p50(NoopPatch), b.p50(Ours); min(none, noop, patch, ours) > 0 {
			p("Of ai-webhook's %s added to the p50: %s is the API server calling any webhook (no-op), %s the API server applying "+
				"ai-webhook's patch (no-op with the patch, minus no-op), %s ai-webhook's own time (minus no-op with the patch).\n\n",
				fmtDur(ours-none), fmtDur(noop-none), fmtDur(patch-noop), fmtDur(ours-patch))
		}
		p.firstErrors(func(i int) (string, error) { return "error under " + b.Conds[i].Name, b.Conds[i].Err }, len(b.Conds))
	}
}

func (r *Report) markdownOverload(p printer) {
	o := r.Overload
	if !p.section("B5: overload", o != nil) {
		return
	}
	p("%v times the higher of the two saturated rates, %s per phase; the generator drops a request due while %d are pending.\n\n",
		o.Config.Multiples, o.Config.Step, o.Config.MaxInFlight)
	p.head("load", "server", "offered/s", "offered / own saturated", "sent/s", "accepted/s", "accepted / own saturated", "p99 accepted",
		"failed", "dropped", "server CPU (cores)", "peak RSS")
	for _, f := range o.Rows {
		rss := fmtMiB(f.PeakRSS)
		if !f.RSSReset {
			rss += " (since start)"
		}
		p("| %dx | %s | %d | %.1fx | %.0f | %.0f | %.2f | %s | %d | %d | %.2f | %s |\n", f.Multiple, f.Server, f.Offered, float64(f.Offered)/f.SatRate,
			f.Sent(), f.Rate(), f.Rate()/f.SatRate, fmtDur(f.Percentiles().P99), f.Failed, f.Dropped, f.cores(f.ServerCPU), rss)
	}
	p("\n")
	p.firstErrors(func(i int) (string, error) {
		return fmt.Sprintf("failure of %s at %dx", o.Rows[i].Server, o.Rows[i].Multiple), o.Rows[i].Err
	}, len(o.Rows))
}

func cpus(c []int) string {
	if len(c) == 0 {
		return "(any)"
	}
	return strings.Trim(fmt.Sprint(c), "[]")
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func fmtNs(ns float64) string { return fmtDur(time.Duration(ns)) }

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d >= 10*time.Microsecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case d >= time.Microsecond:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	}
	return fmt.Sprintf("%d ns", d.Nanoseconds())
}

func fmtMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Markers delimit the generated part of BENCHMARKS.md; text outside them (how each part is
// measured, findings, a history of figures) is kept when the file is rewritten.
const (
	BeginMarker = "<!-- BEGIN GENERATED by make bench (test/bench/cmd/benchrun): edits between these markers are overwritten -->"
	EndMarker   = "<!-- END GENERATED -->"
)

// Splice puts generated between the markers of old, or makes a new file when old has none.
func Splice(old, generated string) string {
	block := BeginMarker + "\n" + generated + EndMarker + "\n"
	i, j := strings.Index(old, BeginMarker), strings.Index(old, EndMarker)
	if i < 0 || j < i {
		return "# Benchmarks\n\n" + block
	}
	return old[:i] + block + strings.TrimPrefix(old[j+len(EndMarker):], "\n")
}
