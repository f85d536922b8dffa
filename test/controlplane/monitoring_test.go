package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/ai-webhook/ai-webhook/infra/webhookstack"
	"github.com/ai-webhook/ai-webhook/test/internal/crds"
)

// installMonitoringCRDs creates prometheus-operator's PodMonitor and PrometheusRule CRDs, which
// `make tools` generates from the operator's API types into bin/monitoring-crds, and waits
// until each is established.
func installMonitoringCRDs(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	dir := filepath.Join(os.Getenv(envRepoRoot), "bin", "monitoring-crds")
	var files []string
	for _, plural := range []string{"podmonitors", "prometheusrules"} {
		file := filepath.Join(dir, "monitoring.coreos.com_"+plural+".yaml")
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("%v: run `make prometheus-tools` (or `make tools`)", err)
		}
		files = append(files, file)
	}
	if err := crds.InstallCRDs(context.Background(), dyn, files); err != nil {
		t.Fatal(err)
	}
}

const monitoringAPIVersion = "monitoring.coreos.com/v1"

// The stack's PodMonitor and PrometheusRule are accepted by prometheus-operator's CRDs (strict
// field validation: a misspelt field is refused, not pruned), and the API server stores them
// as rendered: the PodMonitor selects the instance's Pods on the metrics port, the rule carries
// every alert for the stack's namespace and webhook name. prometheus-operator itself does not
// run here; test/e2e runs a real Prometheus with the same alerts.
func TestMonitoringObjectsAreAcceptedByTheOperatorsCRDs(t *testing.T) {
	requireControlPlane(t)
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(fx.cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	installMonitoringCRDs(t, dyn)
	ns := newNamespace(t, nil)

	cfg := webhookstack.Config{
		Name: "canary", Namespace: ns, WebhookName: "inject.gpu.corp.example", MetricsPort: 9090,
		Monitoring: webhookstack.Monitoring{PodMonitor: true, PrometheusRule: true, Interval: "30s",
			Labels: map[string]string{"release": "kube-prometheus-stack"}},
	}
	objs, err := webhookstack.MonitoringObjects(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("%d objects, want a PodMonitor and a PrometheusRule", len(objs))
	}
	for _, obj := range objs {
		got, err := createStrict(ctx, dyn, monitoringAPIVersion, obj.Kind, ns, obj.Name, obj.Labels, obj.Spec)
		if err != nil {
			t.Fatalf("the API server refused %s %s: %v", obj.Kind, obj.Name, err)
		}
		switch obj.Kind {
		case "PodMonitor":
			var port string
			if eps, _, _ := unstructured.NestedSlice(got.Object, "spec", "podMetricsEndpoints"); len(eps) == 1 {
				port, _ = eps[0].(map[string]any)["port"].(string)
			}
			instance, _, _ := unstructured.NestedString(got.Object, "spec", "selector", "matchLabels", "app.kubernetes.io/instance")
			if port != "metrics" || instance != "canary" {
				t.Errorf("stored PodMonitor scrapes port %q of instance %q, want metrics of canary", port, instance)
			}
		case "PrometheusRule":
			groups, _, _ := unstructured.NestedSlice(got.Object, "spec", "groups")
			var alerts, exprs []string
			for _, g := range groups {
				rules, _ := g.(map[string]any)["rules"].([]any)
				for _, r := range rules {
					m := r.(map[string]any)
					alerts = append(alerts, fmt.Sprint(m["alert"]))
					exprs = append(exprs, fmt.Sprint(m["expr"]))
				}
			}
			joined := strings.Join(exprs, "\n")
			if len(alerts) < 7 || !strings.Contains(joined, `namespace="`+ns+`"`) || !strings.Contains(joined, `name="inject.gpu.corp.example"`) {
				t.Errorf("stored PrometheusRule: alerts %v, expressions:\n%s", alerts, joined)
			}
		}
	}

	// The schema is enforced: a misspelt field and a scheme outside the enum are refused.
	for what, spec := range map[string]map[string]any{
		"misspelt podMetricsEndpoint": {"selector": map[string]any{}, "podMetricsEndpoint": []any{map[string]any{"port": "metrics"}}},
		"scheme ftp":                  {"selector": map[string]any{}, "podMetricsEndpoints": []any{map[string]any{"port": "metrics", "scheme": "ftp"}}},
	} {
		if _, err := createStrict(ctx, dyn, monitoringAPIVersion, "PodMonitor", ns, "bad", nil, spec); err == nil {
			t.Errorf("a PodMonitor with %s was accepted", what)
		}
	}
}
