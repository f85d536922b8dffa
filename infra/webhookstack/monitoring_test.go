package webhookstack

import (
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/infra/monitoring"
)

const (
	typePodMonitor     = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
	typePrometheusRule = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
)

func TestServerServesMetricsOnItsOwnPortByDefault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		config   map[string]string
		wantArg  string
		wantPort int
	}{
		{"default 9090", nil, "--metrics-listen=:9090", 9090},
		{"another port", map[string]string{"metricsPort": "9102"}, "--metrics-listen=:9102", 9102},
		{"0 serves none", map[string]string{"metricsPort": "0"}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctr := get(mustRun(t, tc.config).one(t, typeDeployment).Inputs, "spec.template.spec.containers.0")
			args := strs(ctr, "args")
			hasArg := slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--metrics-listen") })
			if tc.wantArg == "" && hasArg || tc.wantArg != "" && !slices.Contains(args, tc.wantArg) {
				t.Errorf("args %v, want %q", args, tc.wantArg)
			}
			var metricsPort int
			for _, p := range get(ctr, "ports").([]any) {
				if str(p, "name") == metricsPortName {
					metricsPort = num(p, "containerPort")
				}
			}
			want(t, "metrics container port", metricsPort, tc.wantPort)
		})
	}
}

func TestNoMonitoringObjectsByDefault(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	if n := len(res.byType(typePodMonitor)) + len(res.byType(typePrometheusRule)); n != 0 {
		t.Fatalf("%d prometheus-operator objects by default: the CRDs may not be installed", n)
	}
}

func TestPodMonitorScrapesEveryReplicasMetricsPort(t *testing.T) {
	t.Parallel()
	pm := mustRun(t, map[string]string{
		"name": "canary", "namespace": "ml-infra",
		"monitoring": `{"podMonitor":true,"labels":{"release":"kube-prometheus-stack"},"interval":"15s"}`,
	}).one(t, typePodMonitor).Inputs
	want(t, "apiVersion", str(pm, "apiVersion"), "monitoring.coreos.com/v1")
	want(t, "kind", str(pm, "kind"), "PodMonitor")
	want(t, "name", str(pm, "metadata.name"), "canary")
	want(t, "namespace", str(pm, "metadata.namespace"), "ml-infra")
	want(t, "release label", str(pm, "metadata.labels.release"), "kube-prometheus-stack")
	want(t, "selector", get(pm, "spec.selector"), map[string]any{"matchLabels": map[string]any{
		"app.kubernetes.io/name": "ai-webhook", "app.kubernetes.io/component": "admission-webhook", "app.kubernetes.io/instance": "canary",
	}})
	want(t, "endpoints", get(pm, "spec.podMetricsEndpoints"), []any{map[string]any{
		"port": "metrics", "path": "/metrics", "scheme": "http", "interval": "15s",
	}})
}

func TestPrometheusRuleAlertsOnThisInstallation(t *testing.T) {
	t.Parallel()
	pr := mustRun(t, map[string]string{
		"namespace": "ml-infra", "domain": "gpu.corp.example",
		"monitoring": `{"prometheusRule":true}`,
	}).one(t, typePrometheusRule).Inputs
	want(t, "kind", str(pr, "kind"), "PrometheusRule")
	want(t, "namespace", str(pr, "metadata.namespace"), "ml-infra")
	// The spec is the rendered rule file, whole.
	rendered, err := monitoring.Rules("ml-infra", "gpu.corp.example")
	if err != nil {
		t.Fatal(err)
	}
	data, err := rendered.YAML()
	if err != nil {
		t.Fatal(err)
	}
	var wantSpec map[string]any
	if err := yaml.Unmarshal(data, &wantSpec); err != nil {
		t.Fatal(err)
	}
	want(t, "spec", get(pr, "spec"), wantSpec)
	var exprs []string
	for _, r := range get(pr, "spec.groups.0.rules").([]any) {
		exprs = append(exprs, str(r, "expr"))
	}
	joined := strings.Join(exprs, "\n")
	for _, s := range []string{`namespace="ml-infra"`, `name="gpu.corp.example"`} {
		if !strings.Contains(joined, s) {
			t.Errorf("no alert selects %s:\n%s", s, joined)
		}
	}
	for _, s := range []string{`namespace="ai-webhook"`, `name="ai.example.com"`} {
		if strings.Contains(joined, s) {
			t.Errorf("an alert still selects the default %s:\n%s", s, joined)
		}
	}
}

func TestInvalidMonitoringFailsNamingTheKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		config map[string]string
		want   string
	}{
		{"metrics port too high", map[string]string{"metricsPort": "70000"}, `ai-webhook:metricsPort must be 0 (no metrics port) or a port number, got 70000`},
		{"metrics port on the webhook port", map[string]string{"metricsPort": "8443"}, `ai-webhook:metricsPort must differ from port (8443)`},
		{"pod monitor without a metrics port", map[string]string{"metricsPort": "0", "monitoring": `{"podMonitor":true}`}, `ai-webhook:monitoring podMonitor needs the metrics port: metricsPort is 0`},
		{"interval not a duration", map[string]string{"monitoring": `{"interval":"soon"}`}, `ai-webhook:monitoring interval must be a Prometheus duration such as 30s or 1m, got "soon"`},
		{"label key", map[string]string{"monitoring": `{"labels":{"bad key":"x"}}`}, `ai-webhook:monitoring.labels[bad key]: Invalid value: "bad key"`},
		{"field typo", map[string]string{"monitoring": `{"podMonitors":true}`}, `ai-webhook:monitoring must be a JSON object matching the documented shape: json: unknown field "podMonitors"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantRefused(t, tc.config, tc.want)
		})
	}
}
