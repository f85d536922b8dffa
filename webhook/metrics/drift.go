package metrics

import "github.com/prometheus/client_golang/prometheus"

// PodsOutOfDate registers ai_webhook_pods_out_of_date{profile} (serve
// --pods-out-of-date-metric on), read from count at each scrape: Pods the profiles in use
// would change, per profile. count returns nil while it does not know (before the first
// list): nothing is exported then rather than a misleading zero.
func (m *Metrics) PodsOutOfDate(count func() map[string]int) {
	m.Registry.MustRegister(&countCollector{
		desc: prometheus.NewDesc("ai_webhook_pods_out_of_date",
			"Pods that today's profiles would change (no stamp although they ask for a profile, or another profile hash), per profile; _other: a profile the file lacks, or one the webhook would refuse.",
			[]string{"profile"}, nil),
		count: count,
	})
}

type countCollector struct {
	desc  *prometheus.Desc
	count func() map[string]int
}

func (c *countCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *countCollector) Collect(ch chan<- prometheus.Metric) {
	for label, n := range c.count() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), label)
	}
}
