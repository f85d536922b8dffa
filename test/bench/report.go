package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
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

// Machine describes where a run happened.
type Machine struct {
	CPUModel  string
	CPUs      int
	GoVersion string
	OS        string
	Kernel    string
}

// ThisMachine reads /proc for the CPU model and kernel.
func ThisMachine() Machine {
	m := Machine{CPUModel: "unknown", CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// Report is everything one run measured.
type Report struct {
	Machine    Machine
	Date       time.Time
	Command    string
	Duration   time.Duration
	ServerCPUs []int             // CPUs each server was confined to in B1
	LoadCPUs   []int             // CPUs the load generator was confined to in B1
	MicroCPUs  []int             // CPU B2/B3 ran on (GOMAXPROCS=1)
	Throughput *ThroughputResult // B1
	Overload   *OverloadResult   // B5
	Micro      []MicroRow        // B2 and B3
	EnvSeries  []string
	CtrSeries  []string
	PodCreates []*PodCreateResult // B4: etcd syncing (as a real cluster), then etcd --unsafe-no-fsync
	Notes      []string           // e.g. why a part did not run
	LoadStart  string             // /proc/loadavg when the run began
	LoadEnd    string             // and when it ended
}

// LoadAvg is the 1, 5 and 15 minute load averages: a busy machine makes every figure worse.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Goal is one line of the targets table.
type Goal struct {
	Name  string
	Value string
	Goal  string
	Met   bool
	Known bool // false when the part was not run
}

func (r *Report) micro(shape, impl string) *MicroRow {
	for i := range r.Micro {
		if r.Micro[i].Shape.Key == shape && r.Micro[i].Impl == impl {
			return &r.Micro[i]
		}
	}
	return nil
}

// Slopes are the marginal costs, in ns per unit (env var or container), between
// consecutive points of a series, for impl.
func (r *Report) Slopes(series []string, impl string, unit func(Shape) int) []float64 {
	var out []float64
	for i := 1; i < len(series); i++ {
		a, b := r.micro(series[i-1], impl), r.micro(series[i], impl)
		if a == nil || b == nil {
			return nil
		}
		du := unit(b.Shape) - unit(a.Shape)
		if du == 0 {
			continue
		}
		out = append(out, (b.NsPerOp()-a.NsPerOp())/float64(du))
	}
	return out
}

func envUnit(s Shape) int { return s.EnvVars }
func ctrUnit(s Shape) int { return s.Containers }

// SpanGrowth judges linearity on two wide spans instead of neighbouring steps: the marginal
// cost from the middle size to the largest over that from the smallest to the middle. A step
// of a few units between two similar times is mostly noise; spans of half the range are not,
// and a quadratic cost still shows (about 2.5x for 2 -> 10 -> 20 containers).
func (r *Report) SpanGrowth(series []string, impl string, unit func(Shape) int) float64 {
	if len(series) < 3 {
		return 0
	}
	first, mid, last := r.micro(series[0], impl), r.micro(series[len(series)/2], impl), r.micro(series[len(series)-1], impl)
	if first == nil || mid == nil || last == nil {
		return 0
	}
	lower := (mid.NsPerOp() - first.NsPerOp()) / float64(unit(mid.Shape)-unit(first.Shape))
	upper := (last.NsPerOp() - mid.NsPerOp()) / float64(unit(last.Shape)-unit(mid.Shape))
	if lower <= 0 {
		return 0
	}
	return upper / lower
}

func findServer(tr *ThroughputResult, name string) *ServerFigures {
	if tr == nil {
		return nil
	}
	for _, s := range tr.Servers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Targets evaluates the targets for ai-webhook.
func (r *Report) Targets() []Goal {
	var ts []Goal
	ours, ref := findServer(r.Throughput, Ours), findServer(r.Throughput, Reference)
	t := Goal{Name: "Saturated throughput vs reference", Goal: fmt.Sprintf(">= %.1fx", TargetThroughputRatio)}
	if ours != nil && ref != nil && ref.SatMedian() > 0 {
		ratio := ours.SatMedian() / ref.SatMedian()
		t.Known, t.Met, t.Value = true, ratio >= TargetThroughputRatio, fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", ratio, ours.SatMedian(), ref.SatMedian())
	}
	ts = append(ts, t)
	t = Goal{Name: "p99 at 1,000 req/s", Goal: "< " + fmtDur(TargetP99At1000)}
	if o := ours.OpenAt(1000); o != nil {
		t.Known, t.Met, t.Value = true, o.Lat.P99 < TargetP99At1000 && o.Failed == 0, fmtDur(o.Lat.P99)
	}
	ts = append(ts, t)
	t = Goal{Name: "Handler time vs decode/encode floor (typical Pod)", Goal: fmt.Sprintf("<= %.1fx", TargetFloorRatio)}
	if o, f := r.micro("typical", Ours), r.micro("typical", Floor); o != nil && f != nil {
		ratio := o.NsPerOp() / f.NsPerOp()
		t.Known, t.Met, t.Value = true, ratio <= TargetFloorRatio, fmt.Sprintf("%.2fx (%s vs %s)", ratio, fmtNs(o.NsPerOp()), fmtNs(f.NsPerOp()))
	}
	ts = append(ts, t)
	t = Goal{Name: "Linear growth with Pod size", Goal: fmt.Sprintf("marginal cost, upper half of the sizes / lower half <= %.1fx", TargetSlopeRatio)}
	if e, c := r.SpanGrowth(r.EnvSeries, Ours, envUnit), r.SpanGrowth(r.CtrSeries, Ours, ctrUnit); e > 0 && c > 0 {
		t.Known, t.Met, t.Value = true, e <= TargetSlopeRatio && c <= TargetSlopeRatio, fmt.Sprintf("env vars %.2fx, containers %.2fx", e, c)
	}
	ts = append(ts, t)
	t = Goal{Name: "Peak RSS under load", Goal: "< " + fmtMiB(TargetPeakRSS)}
	if ours != nil {
		t.Known, t.Met, t.Value = true, ours.PeakRSS < TargetPeakRSS, fmtMiB(ours.PeakRSS)
	}
	ts = append(ts, t)
	t = Goal{Name: "API server Pod-create p50 overhead", Goal: fmt.Sprintf("< %.0f%%", TargetAPIOverhead*100)}
	var vals []string
	for i, b := range r.PodCreates {
		ov, ok := b.Overhead(Ours, NoWebhook)
		if !ok {
			continue
		}
		vals = append(vals, fmt.Sprintf("%+.1f%% (%s)", ov*100, b.Setup()))
		if i == 0 { // the target is judged on the control plane as clusters run it
			t.Known, t.Met = true, ov < TargetAPIOverhead
		}
	}
	t.Value = strings.Join(vals, "; ")
	ts = append(ts, t)
	return ts
}

// Overhead is the p50 create latency with server name registered over that under base,
// minus 1.
func (b *PodCreateResult) Overhead(name, base string) (float64, bool) {
	if b == nil || b.Skipped != "" || b.Err != nil {
		return 0, false
	}
	var bc, with *PodCreateCondition
	for i := range b.Conds {
		switch b.Conds[i].Name {
		case base:
			bc = &b.Conds[i]
		case name:
			with = &b.Conds[i]
		}
	}
	if bc == nil || with == nil || bc.Lat.P50 == 0 || with.Lat.N == 0 {
		return 0, false
	}
	return float64(with.Lat.P50)/float64(bc.Lat.P50) - 1, true
}

// Setup names the etcd configuration.
func (b *PodCreateResult) Setup() string {
	if b.Config.NoFsync {
		return "etcd --unsafe-no-fsync"
	}
	return "etcd syncing to disk"
}

// Markdown writes the report.
func (r *Report) Markdown(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	m := r.Machine
	p("Generated by `%s` on %s in %s.\n\n", r.Command, r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Duration.Round(time.Second))
	p("Machine: %s, %d CPUs, %s, Linux %s; %s. Load average (1, 5, 15 min) at start %s, at end %s.\n\n",
		m.CPUModel, m.CPUs, m.OS, m.Kernel, m.GoVersion, r.LoadStart, r.LoadEnd)
	for _, n := range r.Notes {
		p("**%s**\n\n", n)
	}

	p("## Targets\n\n| Target | Goal | ai-webhook | Met |\n|---|---|---|---|\n")
	for _, t := range r.Targets() {
		met, val := "no", t.Value
		switch {
		case !t.Known:
			met, val = "not measured", "-"
		case t.Met:
			met = "yes"
		}
		p("| %s | %s | %s | %s |\n", t.Name, t.Goal, val, met)
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

func (r *Report) markdownThroughput(p printer) {
	b := r.Throughput
	if !p.section("B1: the handler as the API server calls it", b != nil) {
		return
	}
	c := b.Config
	p("Both servers run as separate processes serving TLS on 127.0.0.1 (ECDSA P-256 certificate): `ai-webhook serve` (the real binary, "+
		"info-level JSON logs to a file) and the reference (`test/bench/cmd/reference`: controller-runtime v0.25.2 `webhook.Server` "+
		"and `admission.Webhook`, decoding the Pod with the admission decoder, applying the same profile with `inject.Mutate`, then "+
		"`json.Marshal` and `admission.PatchResponseFromRaw`; info-level JSON logs to a file). Every request is an AdmissionReview "+
		"(CREATE) of the typical GPU training Pod (`%s` with the API server's defaults, ServiceAccount volume, tolerations and "+
		"managed fields, as admitted) under the shipped `pytorch-training` profile. The load generator (Go, in the runner process) "+
		"speaks HTTP/1.1 with kept-alive connections (`MaxIdleConnsPerHost` 25, HTTP/2 off) as the API server does.\n\n", TypicalPodFile)
	p("CPU: the machine has %d CPUs and the load generator shares them. Each server was confined to CPU %v (so GOMAXPROCS=1: "+
		"one core's worth, the same for both), the load generator to CPU %v; only one server is loaded at a time. "+
		"Closed loop: %d connections each sending its next request when the previous is answered (saturation). "+
		"Open loop: requests sent at fixed rates whether or not earlier ones were answered, latency measured from each request's "+
		"intended send time (no coordinated omission; the generator's own delays count against the server). %d alternating rounds "+
		"(order flipped each round) of %s per phase after a %s warm-up; latency percentiles pool all rounds; throughput is the median "+
		"round. CPU time per request is the server's utime+stime (/proc/<pid>/stat) over the phase divided by its requests; "+
		"peak RSS is VmHWM at the end of B1.\n\n",
		r.Machine.CPUs, cpus(r.ServerCPUs), cpus(r.LoadCPUs), c.Concurrency, c.Rounds, c.Step, c.Warmup)
	ours, ref, nop := findServer(b, Ours), findServer(b, Reference), findServer(b, Noop)
	if ours == nil || ref == nil {
		return
	}
	if nop != nil {
		p("**Calibration, the no-op column**: a server on the same TLS and net/http stack that reads the review and answers " +
			"allowed without decoding it (`NoopMain` in test/bench): what any webhook pays in this setup before doing any work, " +
			"load generator included. Its latencies bound what a webhook can reach here.\n\n")
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
		join := func(s *ServerFigures, f func(i int, d time.Duration) string) string {
			var parts []string
			for i, d := range get(s) {
				parts = append(parts, f(i, d))
			}
			return strings.Join(parts, " / ")
		}
		row(name, func(s *ServerFigures) string {
			return join(s, func(_ int, d time.Duration) string { return fmtDur(d) })
		},
			join(ours, func(i int, d time.Duration) string { return ratio(float64(d), float64(get(ref)[i])) }))
	}
	row(fmt.Sprintf("saturated req/s, median (min-max), concurrency %d", c.Concurrency), func(s *ServerFigures) string { return fmtRPS(s.SatRPS) },
		ratio(ours.SatMedian(), ref.SatMedian()))
	durs("latency at saturation p50 / p99", func(s *ServerFigures) []time.Duration { return []time.Duration{s.SatLat.P50, s.SatLat.P99} })
	durs("CPU per request at saturation", func(s *ServerFigures) []time.Duration { return []time.Duration{s.SatCPUPerReq} })
	row("server CPU at saturation (cores)", func(s *ServerFigures) string { return fmt.Sprintf("%.2f", s.ServerCPU) }, "")
	row("load generator CPU at saturation (cores)", func(s *ServerFigures) string { return fmt.Sprintf("%.2f", s.LoadgenCPU) }, "")
	for _, rate := range c.Rates {
		at := func(s *ServerFigures) *RateFigures {
			if o := s.OpenAt(rate); o != nil {
				return o
			}
			return &RateFigures{}
		}
		durs(fmt.Sprintf("**%d req/s**: p50 / p99 / p99.9", rate), func(s *ServerFigures) []time.Duration {
			return []time.Duration{at(s).Lat.P50, at(s).Lat.P99, at(s).Lat.P999}
		})
		row(fmt.Sprintf("%d req/s: answered/s; CPU per request", rate), func(s *ServerFigures) string {
			return fmt.Sprintf("%.0f; %s", at(s).Achieved, fmtDur(at(s).CPUPerReq))
		}, ratio(float64(at(ours).CPUPerReq), float64(at(ref).CPUPerReq)))
	}
	row("peak RSS (VmHWM)", func(s *ServerFigures) string { return fmtMiB(s.PeakRSS) }, ratio(float64(ours.PeakRSS), float64(ref.PeakRSS)))
	row("failed / dropped requests", failures, "")
	p("\n")
	for _, s := range b.Servers {
		if s.Err != nil {
			p("First error of %s: `%v`\n\n", s.Name, s.Err)
		}
	}
}

func failures(s *ServerFigures) string {
	dropped := 0
	for _, o := range s.Open {
		dropped += o.Dropped
	}
	return fmt.Sprintf("%d / %d", s.Failed, dropped)
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
	p("In-process on CPU %v with GOMAXPROCS=1: `testing.Benchmark` calls each handler's `ServeHTTP` with the review body, as "+
		"net/http hands it over after TLS. Times are **CPU time per admission** (user+system time of the process over all iterations, "+
		"divided by them: garbage collection included, and unaffected by other processes taking the CPU away); the wall-clock time "+
		"of ai-webhook is shown beside it. ai-webhook's handler includes its Prometheus metrics and formats its info-level JSON log "+
		"line (to io.Discard); the reference is controller-runtime's `admission.Webhook` with the handler above (its server adds "+
		"metrics middleware not counted here). **Floor (B3)**: read the body, `json.Unmarshal` the AdmissionReview and the Pod in "+
		"it, encode an allowed answer without a patch: what any webhook that decodes the Pod must do. Before timing, every answer "+
		"was checked: the patch applies, and ai-webhook's and the reference's patched Pods are equal.\n\n", cpus(r.MicroCPUs))
	p("| Pod | review bytes | ai-webhook | (wall) | reference | floor | ours/floor | ours/reference | ai-webhook allocs, KiB | reference allocs, KiB |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, o := range r.Micro { // in the order measured: the main shapes, then the growth series
		ref, f := r.micro(o.Shape.Key, Reference), r.micro(o.Shape.Key, Floor)
		if o.Impl != Ours || ref == nil || f == nil {
			continue
		}
		body, _ := ReviewBody(o.Shape.Pod, "7f1c0e5a-0000-4000-8000-000000000001")
		p("| %s | %d | %s | %s | %s | %s | %.2fx | %s | %d, %.0f | %d, %.0f |\n", o.Shape.Title, len(body), fmtNs(o.NsPerOp()), fmtNs(o.WallNsPerOp()), fmtNs(ref.NsPerOp()),
			fmtNs(f.NsPerOp()), o.NsPerOp()/f.NsPerOp(), ratio(o.NsPerOp(), ref.NsPerOp()),
			o.Result.AllocsPerOp(), float64(o.Result.AllocedBytesPerOp())/1024, ref.Result.AllocsPerOp(), float64(ref.Result.AllocedBytesPerOp())/1024)
	}
	p("\nGrowth: the marginal cost between consecutive sizes (time added per env var or container). Linear growth keeps it " +
		"constant; quadratic growth would double it with each doubling of size. The target is judged on two wide spans, the " +
		"marginal cost from the middle size to the largest over that from the smallest to the middle (upper/lower half), since " +
		"a step of a few units between two similar times is mostly noise.\n\n")
	p("| series | ai-webhook | reference | floor |\n|---|---|---|---|\n")
	for _, s := range []struct {
		name   string
		series []string
		unit   func(Shape) int
		label  string
	}{{"env vars", r.EnvSeries, envUnit, "per env var"}, {"containers", r.CtrSeries, ctrUnit, "per container"}} {
		var cells []string
		for _, impl := range []string{Ours, Reference, Floor} {
			sl := r.Slopes(s.series, impl, s.unit)
			var parts []string
			for _, v := range sl {
				parts = append(parts, fmtNs(v))
			}
			cells = append(cells, fmt.Sprintf("%s (upper/lower half %.2fx)", strings.Join(parts, ", "), r.SpanGrowth(s.series, impl, s.unit)))
		}
		var sizes []string
		for _, k := range s.series {
			if m := r.micro(k, Ours); m != nil {
				sizes = append(sizes, fmt.Sprint(s.unit(m.Shape)))
			}
		}
		p("| %s %s, sizes %s | %s |\n", s.name, s.label, strings.Join(sizes, " → "), strings.Join(cells, " | "))
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
	p("kube-apiserver and etcd from `bin/` (`make tools`) on loopback, RBAC on, the default admission plugins. The same typical GPU "+
		"training Pod (`%s`, as the user writes it) is created %d times per condition per round, one after another, in %d rounds; "+
		"each round registers a MutatingWebhookConfiguration (URL client config, `failurePolicy: Fail`) for the condition's server, "+
		"or none, waits until dry-run creates show the change in effect, and conditions rotate every round. Latency is the client's "+
		"(client-go) create call. The webhook servers are the B1 processes (each still confined to one CPU); the API server, etcd "+
		"and client share the machine's %d CPUs. The no-op server shows the API server's own cost of calling any webhook "+
		"(encoding the review, the TLS round trip); the no-op server answering with ai-webhook's patch for this Pod (computed once) "+
		"adds the API server's cost of applying that patch; the difference between it and ai-webhook is ai-webhook's own time. "+
		"The p50-over-no-op column is what each adds beyond the no-op. "+
		"Two control planes, one after the other: etcd syncing to disk as in a cluster (the target is judged here), then etcd with "+
		"`--unsafe-no-fsync`, a faster baseline on which any webhook's relative overhead looks larger.\n\n",
		TypicalPodFile, r.PodCreates[0].Config.Pods, r.PodCreates[0].Config.Rounds, r.Machine.CPUs)
	for _, b := range r.PodCreates {
		p("**%s**", b.Setup())
		if b.Err != nil {
			p(": failed: %v\n\n", b.Err)
			continue
		}
		p("\n\n| condition | creates | p50 | p99 | p50 overhead | p50 over the no-op webhook | failed |\n|---|---|---|---|---|---|---|\n")
		for _, c := range b.Conds {
			ov, over := "-", "-"
			if o, ok := b.Overhead(c.Name, NoWebhook); ok && c.Name != NoWebhook {
				ov = fmt.Sprintf("%+.1f%%", o*100)
			}
			if o, ok := b.Overhead(c.Name, Noop); ok && c.Name != NoWebhook && c.Name != Noop {
				over = fmt.Sprintf("%+.1f%%", o*100)
			}
			p("| %s | %d | %s | %s | %s | %s | %d |\n", c.Name, c.Lat.N, fmtDur(c.Lat.P50), fmtDur(c.Lat.P99), ov, over, c.Failed)
		}
		p("\n")
		if d, ok := b.decompose(); ok {
			p("Of ai-webhook's %s added to the p50: %s is the API server calling any webhook (no-op), %s the API server applying "+
				"ai-webhook's patch (no-op with the patch, minus no-op), %s ai-webhook's own time (minus no-op with the patch).\n\n",
				fmtDur(d[0]+d[1]+d[2]), fmtDur(d[0]), fmtDur(d[1]), fmtDur(d[2]))
		}
		for _, c := range b.Conds {
			if c.Err != nil {
				p("First error under %s: `%v`\n\n", c.Name, c.Err)
			}
		}
	}
}

// decompose splits ai-webhook's p50 overhead into calling a webhook, applying the patch and
// ai-webhook's own part.
func (b *PodCreateResult) decompose() ([3]time.Duration, bool) {
	p50 := map[string]time.Duration{}
	for _, c := range b.Conds {
		p50[c.Name] = c.Lat.P50
	}
	for _, k := range []string{NoWebhook, Noop, NoopPatch, Ours} {
		if p50[k] == 0 {
			return [3]time.Duration{}, false
		}
	}
	return [3]time.Duration{p50[Noop] - p50[NoWebhook], p50[NoopPatch] - p50[Noop], p50[Ours] - p50[NoopPatch]}, true
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

// Markers delimit the generated part of BENCHMARKS.md; text outside them (e.g. a history
// of before/after figures) is kept when the file is rewritten.
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
