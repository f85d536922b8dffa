package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/infra/monitoring"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

// defaultMetricsPort is the stack's default metricsPort.
const defaultMetricsPort = "9090"

// TestPrometheusWatchesTheWebhook runs the real Prometheus (bin/prometheus, from
// tools/prometheus) in the local cluster with the shipped alert rules, scraping every webhook
// Pod's plain-HTTP metrics port (found through the API server, as kubernetes_sd finds them in a
// real cluster) and the API server itself. It shows the fail-open alert silent while the
// webhook serves, its expression true (and the alert firing) once the webhook is stopped under
// failurePolicy Ignore, and every dashboard query answering with data. The stack is destroyed
// and its config restored at the end.
func TestPrometheusWatchesTheWebhook(t *testing.T) {
	kube := env.cluster.Client
	promBin := filepath.Join(env.root, "bin", "prometheus")
	if _, err := os.Stat(promBin); err != nil {
		t.Fatalf("%s is not built: run `make tools` (tools/prometheus)", promBin)
	}
	destroyAtEnd(t, func() { waitNamespaceGone(t, kube) })
	must := failNowUnless(t)

	deploy(t, "up", "--config", "failurePolicy=Ignore")
	st := currentStack(t, kube)
	if args := st.deployment.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--metrics-listen=:"+defaultMetricsPort) {
		t.Fatalf("the Deployment's server args %q lack --metrics-listen=:%s (stack default metricsPort)", args, defaultMetricsPort)
	}
	ns := "e2e-monitoring"
	createNamespace(t, kube, ns, map[string]string{injectLabel: "enabled"})
	waitMutating(t, kube, ns)

	prom := startPrometheus(t)
	must(t.Run("Prometheus scrapes both webhook Pods' metrics port and the API server", func(t *testing.T) {
		cluster.Eventually(t, 2*time.Minute, "every target up", func() error {
			for query, want := range map[string]int{`up{job="ai-webhook"} == 1`: 2, `up{job="apiserver"} == 1`: 1} {
				if n := len(prom.query(t, query)); n != want {
					return fmt.Errorf("%s: %d series, want %d (targets: %s)", query, n, want, prom.targets(t))
				}
			}
			return nil
		})
		for _, s := range prom.query(t, `ai_webhook_ready{namespace="ai-webhook"}`) {
			if s.Value[1] != "1" || !strings.HasPrefix(s.Metric["pod"], appName) {
				t.Errorf("ai_webhook_ready %v = %v, want 1 for a webhook Pod", s.Metric, s.Value)
			}
		}
	}))

	rules, err := monitoring.Rules(webhookNamespace, webhookName(t))
	if err != nil {
		t.Fatal(err)
	}
	expr := func(alert string) string {
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				if r.Alert == alert {
					return r.Expr
				}
			}
		}
		t.Fatalf("no alert %s", alert)
		return ""
	}

	must(t.Run("while the webhook serves, fail-open and no-ready-replicas are silent", func(t *testing.T) {
		// What the dashboard shows: a mutated Pod, one that keeps its own value (skipped
		// setting), one the webhook denies (unknown profile: the API server's rejection count).
		checkMutated(t, createPod(t, kube, ns, "monitored", false))
		createExamplePod(t, kube, ns)
		createUnknownProfilePod(t, kube, ns)
		time.Sleep(3 * time.Second) // a few scrapes and evaluations
		for _, alert := range []string{"AIWebhookFailingOpen", "AIWebhookNoReadyReplicas"} {
			if got := prom.query(t, expr(alert)); len(got) != 0 {
				t.Errorf("%s's expression is true while the webhook serves: %v", alert, got)
			}
		}
	}))

	must(t.Run("the webhook stopped under failurePolicy Ignore: Pods admitted unmutated, the fail-open alert fires", func(t *testing.T) {
		scaleWebhook(t, kube, 0) // and wait until its Pods are gone
		// Pods keep being created, as a cluster's controllers would: each one fails open.
		i := 0
		cluster.Eventually(t, 2*time.Minute, "the fail-open alert to fire", func() error {
			i++
			pod := createPod(t, kube, ns, fmt.Sprintf("unwatched-%d", i), false)
			checkUntouched(t, pod)
			got := prom.query(t, expr("AIWebhookFailingOpen"))
			if len(got) == 0 {
				return fmt.Errorf("expression false: %s", expr("AIWebhookFailingOpen"))
			}
			if !prom.firing(t, "AIWebhookFailingOpen") {
				return fmt.Errorf("expression true (%v) but the alert is not firing yet", got)
			}
			t.Logf("after %d unmutated Pods: %s = %v", i, expr("AIWebhookFailingOpen"), got[0].Value)
			return nil
		})
		if got := prom.query(t, expr("AIWebhookNoReadyReplicas")); len(got) == 0 {
			t.Errorf("AIWebhookNoReadyReplicas's expression is false with no replica")
		}
	}))

	must(t.Run("the webhook back: every dashboard query returns data", func(t *testing.T) {
		scaleWebhook(t, kube, 2)
		currentStack(t, kube)
		waitMutating(t, kube, ns)
		checkMutated(t, createPod(t, kube, ns, "watched-again", false))
		createExamplePod(t, kube, ns)
		createUnknownProfilePod(t, kube, ns)
		queries, err := monitoring.DashboardQueries(webhookNamespace, webhookName(t), "5m")
		if err != nil {
			t.Fatal(err)
		}
		cluster.Eventually(t, time.Minute, "every dashboard query to return data", func() error {
			var empty []string
			for _, q := range queries {
				if len(prom.query(t, q.Expr)) == 0 {
					empty = append(empty, fmt.Sprintf("%s: %s", q.Panel, q.Expr))
				}
			}
			if len(empty) > 0 {
				return fmt.Errorf("%d of %d queries return nothing:\n%s", len(empty), len(queries), strings.Join(empty, "\n"))
			}
			return nil
		})
		t.Logf("all %d dashboard queries returned data", len(queries))
		if got := prom.query(t, expr("AIWebhookNoReadyReplicas")); len(got) != 0 {
			t.Errorf("AIWebhookNoReadyReplicas's expression is still true with the replicas back: %v", got)
		}
	}))
}

// webhookName is the name of the stack's webhook in its configuration: the API server's
// admission metrics carry it as label name.
func webhookName(t *testing.T) string {
	t.Helper()
	mwc, err := env.cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), webhookConfig, metav1.GetOptions{})
	if err != nil || len(mwc.Webhooks) != 1 {
		t.Fatalf("webhook configuration %s: %v", webhookConfig, err)
	}
	return mwc.Webhooks[0].Name
}

// createExamplePod creates README's example Pod (webhook/examples/pods/pytorch-training.yaml),
// which sets NCCL_DEBUG itself: a skipped setting.
func createExamplePod(t *testing.T, kube kubernetes.Interface, ns string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.root, "webhook", "examples", "pods", "pytorch-training.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil {
		t.Fatal(err)
	}
	pod.Namespace, pod.Name, pod.GenerateName = ns, "", "example-"
	got, err := kube.CoreV1().Pods(ns).Create(context.Background(), &pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkMutated(t, got)
}

// createUnknownProfilePod asks for a profile that does not exist: the webhook refuses the Pod.
func createUnknownProfilePod(t *testing.T, kube kubernetes.Interface, ns string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "unknown-", Labels: map[string]string{profileLabel: "no-such-profile"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if _, err := kube.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "no-such-profile") {
		t.Fatalf("a Pod asking for an unknown profile: %v, want it refused naming the profile", err)
	}
}

// prometheus is a running Prometheus server.
type prometheus struct{ base string }

// startPrometheus runs bin/prometheus with the shipped alerts rendered for the e2e stack,
// scraping every second: the webhook Pods' metrics ports found through the API server, and the
// API server with the admin client certificate.
func startPrometheus(t *testing.T) *prometheus {
	t.Helper()
	dir := t.TempDir()
	cfg := env.cluster.Config
	files := map[string][]byte{"ca.crt": cfg.CAData, "client.crt": cfg.CertData, "client.key": cfg.KeyData}
	rules, err := monitoring.Rules(webhookNamespace, webhookName(t))
	if err != nil {
		t.Fatal(err)
	}
	if files["alerts.yaml"], err = rules.YAML(); err != nil {
		t.Fatal(err)
	}
	apiserver, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	config := map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
		"rule_files": []string{filepath.Join(dir, "alerts.yaml")},
		"scrape_configs": []any{
			map[string]any{
				"job_name": "ai-webhook",
				"kubernetes_sd_configs": []any{map[string]any{
					"role": "pod", "kubeconfig_file": env.cluster.Kubeconfig,
					"namespaces": map[string]any{"names": []string{webhookNamespace}},
				}},
				// As prometheus-operator labels a PodMonitor's targets: namespace and pod.
				"relabel_configs": []any{
					map[string]any{"source_labels": []string{"__meta_kubernetes_pod_container_port_name"}, "regex": "metrics", "action": "keep"},
					map[string]any{"source_labels": []string{"__meta_kubernetes_namespace"}, "target_label": "namespace"},
					map[string]any{"source_labels": []string{"__meta_kubernetes_pod_name"}, "target_label": "pod"},
				},
			},
			map[string]any{
				"job_name": "apiserver", "scheme": "https",
				"tls_config": map[string]any{"ca_file": filepath.Join(dir, "ca.crt"),
					"cert_file": filepath.Join(dir, "client.crt"), "key_file": filepath.Join(dir, "client.key")},
				"static_configs": []any{map[string]any{"targets": []string{apiserver.Host}}},
			},
		},
	}
	if files["prometheus.yml"], err = yaml.Marshal(config); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cluster.StartProcess(cluster.Command{Name: "prometheus", Log: filepath.Join(env.workDir, "prometheus.log"), Argv: []string{
		filepath.Join(env.root, "bin", "prometheus"), "--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=127.0.0.1:" + ports[0],
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("prometheus log:\n%s", cluster.Tail(p.Log, 30))
		}
	})
	prom := &prometheus{base: "http://127.0.0.1:" + ports[0]}
	if err := cluster.Wait(context.Background(), time.Minute, func(ctx context.Context) error {
		return cluster.GetOK(ctx, http.DefaultClient, prom.base+"/-/ready")
	}, p); err != nil {
		t.Fatalf("prometheus: %v\n%s", err, cluster.Tail(p.Log, 30))
	}
	return prom
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// get calls the Prometheus HTTP API and decodes its data.
func (p *prometheus) get(t *testing.T, path string, data any) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(p.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("GET %s: %s %v %s", path, resp.Status, err, r.Error)
	}
	if err := json.Unmarshal(r.Data, data); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// query runs an instant query and returns its series (a scalar answer is one series).
func (p *prometheus) query(t *testing.T, q string) []sample {
	t.Helper()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	p.get(t, "/api/v1/query?query="+url.QueryEscape(q), &data)
	var out []sample
	switch data.ResultType {
	case "vector":
		if err := json.Unmarshal(data.Result, &out); err != nil {
			t.Fatal(err)
		}
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			t.Fatal(err)
		}
		out = []sample{{Value: v}}
	default:
		t.Fatalf("%s: result type %s", q, data.ResultType)
	}
	return out
}

// alert is one of /api/v1/alerts.
type alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

// firing reports whether the alert named name is firing.
func (p *prometheus) firing(t *testing.T, name string) bool {
	t.Helper()
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	p.get(t, "/api/v1/alerts", &data)
	return slices.ContainsFunc(data.Alerts, func(a alert) bool { return a.Labels["alertname"] == name && a.State == "firing" })
}

// targets summarises the scrape targets, for messages.
func (p *prometheus) targets(t *testing.T) string {
	t.Helper()
	var data struct {
		Active []struct {
			ScrapeURL string `json:"scrapeUrl"`
			Health    string `json:"health"`
			LastError string `json:"lastError"`
		} `json:"activeTargets"`
	}
	p.get(t, "/api/v1/targets", &data)
	var s []string
	for _, a := range data.Active {
		s = append(s, fmt.Sprintf("%s %s %s", a.ScrapeURL, a.Health, a.LastError))
	}
	return strings.Join(s, "; ")
}
