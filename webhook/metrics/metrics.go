// Package metrics holds the server's Prometheus collectors in one registry of its own, so
// tests can create as many servers as they like.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Results of an admission request, the label values of RequestsTotal.
const (
	ResultMutated   = "mutated"   // a patch was returned
	ResultUnchanged = "unchanged" // a profile applied but the Pod already had everything
	ResultSkipped   = "skipped"   // no profile applies (opted out, none named, not a Pod)
	ResultDenied    = "denied"    // the Pod was refused (unknown profile, ...)
	ResultError     = "error"     // the request could not be handled (malformed, panic)
)

// Limits that refuse or trim work, the label values of LimitRejections.
const (
	LimitConnections   = "connections"         // a connection over --max-connections was closed at once
	LimitMetricsConns  = "metrics_connections" // a connection to --metrics-listen over its fixed cap was closed at once
	LimitBodyBuffer    = "body_buffer"         // no room in --max-body-buffer-bytes within the queue wait
	LimitConcurrent    = "concurrent"          // no turn among --max-concurrent-reviews within the queue wait
	LimitJSONNodes     = "json_nodes"          // review over --max-json-nodes
	LimitContainers    = "containers"          // Pod over --max-containers
	LimitPatchOps      = "patch_ops"           // patch over --max-patch-ops
	LimitResponseBytes = "response_bytes"      // answer over --max-response-bytes
	LimitWarnings      = "warnings"            // warnings trimmed to --max-warnings (the review still succeeds)
)

// Sources reloaded from files, the label values of ReloadsTotal and LastReloadError.
const (
	SourceCertificate = "certificate"
	SourceProfiles    = "profiles"
)

// Metrics are the server's collectors.
type Metrics struct {
	Registry        *prometheus.Registry
	RequestsTotal   *prometheus.CounterVec
	Duration        prometheus.Histogram
	MutationsTotal  *prometheus.CounterVec
	SkippedTotal    *prometheus.CounterVec
	PanicsTotal     prometheus.Counter
	ReloadsTotal    *prometheus.CounterVec
	ProfilesLoaded  prometheus.Gauge
	CertNotAfter    prometheus.Gauge
	CertExpired     prometheus.Gauge
	LastReloadError *prometheus.GaugeVec
	LimitRejections *prometheus.CounterVec
	Connections     prometheus.Gauge
	MissingObjects  *prometheus.CounterVec
}

// Ready registers ai_webhook_ready, read from ready at each scrape: 1 while the replica
// would answer /readyz with 200. The "no ready replicas" alert sums it over the replicas
// (a Pod whose process is up but not ready still answers scrapes).
func (m *Metrics) Ready(ready func() bool) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ai_webhook_ready",
		Help: "1 while this replica is ready to serve admissions (/readyz answers 200), else 0.",
	}, func() float64 {
		if ready() {
			return 1
		}
		return 0
	}))
}

// New registers the collectors, plus Go runtime and process metrics, in a new registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto.With(reg)
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return f.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	gauge := func(name, help string) prometheus.Gauge {
		return f.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &Metrics{
		Registry: reg,
		RequestsTotal: counter("ai_webhook_admission_requests_total",
			"Admission requests by result: mutated, unchanged, skipped, denied, error.", "result"),
		Duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "ai_webhook_admission_duration_seconds",
			Help:    "Time in the handler, from the request headers (before the body is read) to the response written.",
			Buckets: []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		MutationsTotal: counter("ai_webhook_mutations_total", "Pods patched, by profile.", "profile"),
		SkippedTotal: counter("ai_webhook_skipped_items_total",
			"Profile settings not applied because the Pod set its own value, by profile and field.", "profile", "field"),
		PanicsTotal: f.NewCounter(prometheus.CounterOpts{
			Name: "ai_webhook_panics_total",
			Help: "Panics recovered while handling a request.",
		}),
		ReloadsTotal: counter("ai_webhook_config_reloads_total",
			"Loads of the profiles file and the serving certificate, by source and result (success, error).", "source", "result"),
		ProfilesLoaded: gauge("ai_webhook_profiles_loaded", "Number of profiles currently in use."),
		CertNotAfter: gauge("ai_webhook_certificate_expiry_timestamp_seconds",
			"NotAfter of the serving certificate in use, as a Unix time."),
		CertExpired: gauge("ai_webhook_serving_certificate_expired",
			"1 while the serving certificate in use is outside its validity period (the replica is then not ready)."),
		LastReloadError: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ai_webhook_config_last_reload_failed",
			Help: "1 while the newest version of a source failed to load and the previous one is still in use.",
		}, []string{"source"}),
		LimitRejections: counter("ai_webhook_limit_rejections_total",
			"Requests or connections refused (or warnings trimmed) by a limit, by limit.", "limit"),
		Connections: gauge("ai_webhook_open_connections", "Connections currently open, at most --max-connections."),
		MissingObjects: counter("ai_webhook_missing_objects_total",
			"Profile settings not applied because they name a cluster object that does not exist, by kind and name (--cluster-facts).", "kind", "name"),
	}
	// Every known label value exists from the start at 0, so rate() and the alerts see the
	// first increase and a dashboard panel has data before anything went wrong.
	for _, r := range []string{ResultMutated, ResultUnchanged, ResultSkipped, ResultDenied, ResultError} {
		m.RequestsTotal.WithLabelValues(r)
	}
	for _, l := range []string{LimitConnections, LimitMetricsConns, LimitBodyBuffer, LimitConcurrent, LimitJSONNodes,
		LimitContainers, LimitPatchOps, LimitResponseBytes, LimitWarnings} {
		m.LimitRejections.WithLabelValues(l)
	}
	for _, src := range []string{SourceCertificate, SourceProfiles} {
		m.ReloadsTotal.WithLabelValues(src, "success")
		m.ReloadsTotal.WithLabelValues(src, "error")
		m.LastReloadError.WithLabelValues(src)
	}
	return m
}
