package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The API server's own measurements of its webhook calls.
const (
	metricWebhookDuration = "apiserver_admission_webhook_admission_duration_seconds"
	metricWebhookRequests = "apiserver_admission_webhook_request_total"
	metricWebhookFailOpen = "apiserver_admission_webhook_fail_open_count"
)

// apiMetrics is one scrape of the API server's /metrics.
type apiMetrics map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T) apiMetrics {
	t.Helper()
	data, err := fx.metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// counter sums a counter's series whose labels include all of match.
func (m apiMetrics) counter(name string, match map[string]string) float64 {
	var sum float64
	for _, s := range m.series(name, match) {
		if s.Counter != nil {
			sum += s.Counter.GetValue()
		}
	}
	return sum
}

// histogram merges a histogram's series whose labels include all of match.
func (m apiMetrics) histogram(name string, match map[string]string) histogram {
	h := histogram{buckets: map[float64]float64{}}
	for _, s := range m.series(name, match) {
		if s.Histogram == nil {
			continue
		}
		h.count += float64(s.Histogram.GetSampleCount())
		h.sum += s.Histogram.GetSampleSum()
		for _, b := range s.Histogram.Bucket {
			h.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	return h
}

func (m apiMetrics) series(name string, match map[string]string) []*dto.Metric {
	fam, ok := m[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, s := range fam.Metric {
		labels := map[string]string{}
		for _, l := range s.Label {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range match {
			ok = ok && labels[k] == v
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// histogram is a Prometheus histogram: cumulative counts by upper bound.
type histogram struct {
	count, sum float64
	buckets    map[float64]float64
}

// minus is the histogram of the observations made since before.
func (h histogram) minus(before histogram) histogram {
	d := histogram{count: h.count - before.count, sum: h.sum - before.sum, buckets: map[float64]float64{}}
	for le, c := range h.buckets {
		d.buckets[le] = c - before.buckets[le]
	}
	return d
}

// quantile estimates the q-quantile by linear interpolation within the bucket
// it falls in, as PromQL's histogram_quantile does.
func (h histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	bounds := make([]float64, 0, len(h.buckets))
	for le := range h.buckets {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	rank := q * h.count
	prevBound, prevCount := 0.0, 0.0
	for _, le := range bounds {
		c := h.buckets[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return prevBound
			}
			if c == prevCount {
				return le
			}
			return prevBound + (le-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = le, c
	}
	return prevBound
}

func (h histogram) String() string {
	if h.count == 0 {
		return "no observations"
	}
	return fmt.Sprintf("count=%.0f mean=%.1fms p50≈%.1fms p90≈%.1fms p99≈%.1fms",
		h.count, 1000*h.sum/h.count, 1000*h.quantile(0.5), 1000*h.quantile(0.9), 1000*h.quantile(0.99))
}
