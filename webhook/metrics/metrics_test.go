package metrics

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestKnownSeriesExistFromTheStart: a counter series that appears only at its first increment
// hides that increment from rate() and increase(), so an alert on errors would miss the first
// burst and a dashboard panel would be empty until something went wrong.
func TestKnownSeriesExistFromTheStart(t *testing.T) {
	m := New()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]map[string]bool{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			if series[f.GetName()] == nil {
				series[f.GetName()] = map[string]bool{}
			}
			series[f.GetName()][labelString(metric)] = true
		}
	}
	for name, want := range map[string][]string{
		"ai_webhook_admission_requests_total": {"result=mutated", "result=unchanged", "result=skipped", "result=denied", "result=error"},
		"ai_webhook_limit_rejections_total": {"limit=connections", "limit=metrics_connections", "limit=body_buffer", "limit=concurrent",
			"limit=json_nodes", "limit=containers", "limit=patch_ops", "limit=response_bytes", "limit=warnings"},
		"ai_webhook_config_reloads_total": {"result=success,source=certificate", "result=error,source=certificate",
			"result=success,source=profiles", "result=error,source=profiles"},
		"ai_webhook_config_last_reload_failed": {"source=certificate", "source=profiles"},
	} {
		for _, labels := range want {
			if !series[name][labels] {
				t.Errorf("%s{%s} is not exported before its first increment (have %v)", name, labels, series[name])
			}
		}
	}
}

func labelString(m *dto.Metric) string {
	s := ""
	for i, l := range m.GetLabel() {
		if i > 0 {
			s += ","
		}
		s += l.GetName() + "=" + l.GetValue()
	}
	return s
}
