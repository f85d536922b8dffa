// Package monitoring ships ai-webhook's Prometheus alerts (alerts.yaml, unit-tested by
// alerts_test.yaml) and Grafana dashboard (dashboard.json), and renders the alerts for one
// installation: the files select the default namespace and webhook name, and Rules puts in
// the installation's own, so two installations in one cluster alert each on its own webhook.
package monitoring

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// The values the shipped files select; Rules replaces each matcher on them.
const (
	DefaultNamespace   = "ai-webhook"
	DefaultWebhookName = "ai.example.com"
)

var (
	//go:embed alerts.yaml
	alertsYAML []byte
	//go:embed dashboard.json
	Dashboard []byte
)

// RuleGroups is the content of a rule file, which is also a PrometheusRule's spec.
type RuleGroups struct {
	Groups []RuleGroup `json:"groups"`
}

// RuleGroup is one group of rules.
type RuleGroup struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
}

// Rule is one alerting rule.
type Rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Rules returns the alert groups for the installation in namespace whose webhook (in the
// MutatingWebhookConfiguration, the API server's label name) is webhookName.
func Rules(namespace, webhookName string) (RuleGroups, error) {
	var g RuleGroups
	if err := yaml.UnmarshalStrict(alertsYAML, &g); err != nil {
		return g, fmt.Errorf("alerts.yaml: %w", err)
	}
	r := strings.NewReplacer(
		`namespace="`+DefaultNamespace+`"`, `namespace=`+strconv.Quote(namespace),
		`name="`+DefaultWebhookName+`"`, `name=`+strconv.Quote(webhookName))
	for i := range g.Groups {
		for j := range g.Groups[i].Rules {
			rule := &g.Groups[i].Rules[j]
			rule.Expr = strings.TrimSpace(r.Replace(rule.Expr))
		}
	}
	return g, nil
}

// YAML renders the groups as a rule file.
func (g RuleGroups) YAML() ([]byte, error) { return yaml.Marshal(g) }

// DashboardQuery is one panel query of the dashboard.
type DashboardQuery struct {
	Panel, Expr string
}

// DashboardQueries returns every panel query of the dashboard with its variables filled in
// ($namespace, $webhook, and Grafana's $__rate_interval, $__interval, $__range as interval),
// as Grafana sends them to Prometheus.
func DashboardQueries(namespace, webhook, interval string) ([]DashboardQuery, error) {
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(Dashboard, &d); err != nil {
		return nil, fmt.Errorf("dashboard.json: %w", err)
	}
	r := strings.NewReplacer("$__rate_interval", interval, "$__interval", interval, "$__range", interval,
		"$namespace", namespace, "$webhook", webhook)
	var qs []DashboardQuery
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			qs = append(qs, DashboardQuery{Panel: p.Title, Expr: r.Replace(t.Expr)})
		}
	}
	return qs, nil
}
