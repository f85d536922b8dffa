package monitoring

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	imonitoring "github.com/ai-webhook/ai-webhook/infra/monitoring"
	"github.com/ai-webhook/ai-webhook/test/internal/repo"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
	"github.com/ai-webhook/ai-webhook/webhook/server"
	"github.com/ai-webhook/ai-webhook/webhook/testpki"
)

// APIServerMetrics are the API server's metrics the alerts and the dashboard use, as
// k8s.io/apiserver/pkg/admission/metrics names them (the end-to-end test reads them from a
// real kube-apiserver).
var APIServerMetrics = []string{
	"apiserver_admission_webhook_fail_open_count",
	"apiserver_admission_webhook_rejection_count",
	"apiserver_admission_webhook_admission_duration_seconds_bucket",
	"apiserver_admission_webhook_admission_duration_seconds_count",
	"apiserver_admission_webhook_admission_duration_seconds_sum",
}

// tool returns the path of a binary tools/prometheus builds, or fails saying how to build it.
func tool(t *testing.T, name string) string {
	t.Helper()
	root, err := repo.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", name)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is not built: run `make prometheus-tools` (or `make tools`) in %s", bin, root)
	}
	return bin
}

func monitoringDir(t *testing.T) string {
	t.Helper()
	root, err := repo.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "infra", "monitoring")
}

func run(t *testing.T, dir string, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPromtoolAcceptsTheRules: the shipped file and the rules rendered for another
// installation (what the PrometheusRule carries) both pass `promtool check rules`.
func TestPromtoolAcceptsTheRules(t *testing.T) {
	promtool := tool(t, "promtool")
	dir := monitoringDir(t)
	if out, err := run(t, dir, promtool, "check", "rules", "--lint-fatal", "alerts.yaml"); err != nil {
		t.Fatalf("promtool check rules alerts.yaml: %v\n%s", err, out)
	}
	g, err := imonitoring.Rules("ml-platform", "inject.gpu.corp.example")
	if err != nil {
		t.Fatal(err)
	}
	data, err := g.YAML()
	if err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(rendered, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, dir, promtool, "check", "rules", "--lint-fatal", rendered); err != nil {
		t.Fatalf("promtool check rules (rendered for another installation): %v\n%s\n%s", err, out, data)
	}
}

// promtoolTests is the part of alerts_test.yaml this test reads.
type promtoolTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name  string `json:"name"`
		Alert []struct {
			AlertName string            `json:"alertname"`
			Expected  []json.RawMessage `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestEveryAlertIsUnitTested: `promtool test rules alerts_test.yaml` passes, and every alert
// of alerts.yaml has a case where it fires and one where it stays silent.
func TestEveryAlertIsUnitTested(t *testing.T) {
	promtool := tool(t, "promtool")
	dir := monitoringDir(t)
	out, err := run(t, dir, promtool, "test", "rules", "alerts_test.yaml")
	t.Logf("promtool test rules alerts_test.yaml:\n%s", out)
	if err != nil {
		t.Fatalf("promtool test rules: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests promtoolTests
	if err := yaml.Unmarshal(data, &tests); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tests.RuleFiles, []string{"alerts.yaml"}) {
		t.Errorf("alerts_test.yaml tests %v, want alerts.yaml", tests.RuleFiles)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.Alert {
			if len(a.Expected) > 0 {
				fires[a.AlertName] = true
			} else {
				silent[a.AlertName] = true
			}
		}
	}
	g, err := imonitoring.Rules(imonitoring.DefaultNamespace, imonitoring.DefaultWebhookName)
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, group := range g.Groups {
		for _, r := range group.Rules {
			alerts = append(alerts, r.Alert)
			if !fires[r.Alert] {
				t.Errorf("alert %s has no promtool test where it fires", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("alert %s has no promtool test where it stays silent", r.Alert)
			}
		}
	}
	// The four, at least.
	for _, want := range []string{"AIWebhookCertificateExpiresSoon", "AIWebhookFailingOpen", "AIWebhookRefusingPods",
		"AIWebhookErrors", "AIWebhookConfigReloadFailing", "AIWebhookNoReadyReplicas"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alerts.yaml has no %s (has %v)", want, alerts)
		}
	}
}

// TestRulesRenderForTheirInstallation: every matcher on the default namespace and webhook
// name is replaced, so a second installation's alerts never read the first one's metrics.
func TestRulesRenderForTheirInstallation(t *testing.T) {
	g, err := imonitoring.Rules("ml-platform", "inject.gpu.corp.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, group := range g.Groups {
		for _, r := range group.Rules {
			for _, def := range []string{`namespace="ai-webhook"`, `name="ai.example.com"`} {
				if strings.Contains(r.Expr, def) {
					t.Errorf("%s still selects %s: %s", r.Alert, def, r.Expr)
				}
			}
			if !strings.Contains(r.Expr, `namespace="ml-platform"`) && !strings.Contains(r.Expr, `name="inject.gpu.corp.example"`) {
				t.Errorf("%s selects neither the installation's namespace nor its webhook: %s", r.Alert, r.Expr)
			}
		}
	}
}

// dashboard is the part of dashboard.json this test reads.
type dashboard struct {
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// ourMetrics returns the names in a real server's /metrics, scraped from its plain-HTTP
// metrics port.
func ourMetrics(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	ca, err := testpki.NewCA("monitoring-test", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Defaults()
	cfg.ProfilesFile = filepath.Join(dir, "profiles.yaml")
	if cfg.CertFile, cfg.KeyFile, err = ca.ServingFiles(dir, "ai-webhook.ai-webhook.svc", "ai-webhook.ai-webhook.svc"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.ProfilesFile, profile.Examples, 0o600); err != nil {
		t.Fatal(err)
	}
	ports, err := cluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.MetricsListen = "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1]
	cfg.Domain, cfg.ReloadInterval, cfg.ShutdownDelay = profile.DefaultDomain, time.Second, 0
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	// One real admission of the shipped example (it sets NCCL_DEBUG itself): the per-profile
	// series of mutations and skipped settings exist only once a Pod was mutated.
	admitExample(t, "https://"+cfg.Listen+"/mutate", ca)
	var body []byte
	cluster.Eventually(t, 10*time.Second, "the metrics port to answer", func() error {
		resp, err := http.Get("http://" + cfg.MetricsListen + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		return err
	})
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	names := map[string]bool{}
	for name, f := range families {
		names[name] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}
	return names
}

// admitExample posts an AdmissionReview of webhook/examples/pods/pytorch-training.yaml to url
// and checks that the Pod was patched.
func admitExample(t *testing.T, url string, ca *testpki.CA) {
	t.Helper()
	root, err := repo.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	podYAML, err := os.ReadFile(filepath.Join(root, "webhook", "examples", "pods", "pytorch-training.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pod, err := yaml.YAMLToJSON(podYAML)
	if err != nil {
		t.Fatal(err)
	}
	review, _ := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": "monitoring-test", "operation": "CREATE", "namespace": "ml-team",
			"kind":     map[string]string{"group": "", "version": "v1", "kind": "Pod"},
			"resource": map[string]string{"group": "", "version": "v1", "resource": "pods"},
			"object":   json.RawMessage(pod),
		},
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "ai-webhook.ai-webhook.svc"}}}
	resp, err := client.Post(url, "application/json", bytes.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Response struct {
			Allowed bool   `json:"allowed"`
			Patch   []byte `json:"patch"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || !answer.Response.Allowed || len(answer.Response.Patch) == 0 {
		t.Fatalf("the example Pod was not mutated: %s, %v, %+v", resp.Status, err, answer.Response)
	}
}

// startPrometheus runs the real Prometheus server (no scrape targets) on loopback and returns
// its base URL.
func startPrometheus(t *testing.T) string {
	t.Helper()
	bin := tool(t, "prometheus")
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("global: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + ports[0]
	p, err := cluster.StartProcess(cluster.Command{Name: "prometheus", Log: filepath.Join(dir, "prometheus.log"), Argv: []string{bin,
		"--config.file=" + config, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:" + ports[0]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	if err := cluster.Wait(context.Background(), time.Minute, func(ctx context.Context) error {
		return cluster.GetOK(ctx, http.DefaultClient, base+"/-/ready")
	}, p); err != nil {
		t.Fatalf("prometheus: %v\n%s", err, cluster.Tail(p.Log, 20))
	}
	return base
}

// selectorNames asks Prometheus to parse query (/api/v1/parse_query) and returns the metric
// names its vector and matrix selectors read.
func selectorNames(base, query string) ([]string, error) {
	resp, err := http.Get(base + "/api/v1/parse_query?query=" + url.QueryEscape(query))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   any    `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s", r.Error)
	}
	var names []string
	var walk func(any)
	walk = func(n any) {
		switch v := n.(type) {
		case map[string]any:
			if typ, _ := v["type"].(string); typ == "vectorSelector" || typ == "matrixSelector" {
				if name, _ := v["name"].(string); name != "" {
					names = append(names, name)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(r.Data)
	return names, nil
}

// TestDashboardQueriesParseAndReadExistingMetrics: Prometheus parses every panel query of
// dashboard.json, and each reads only metrics our server exports or the API server's.
func TestDashboardQueriesParseAndReadExistingMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(monitoringDir(t), "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, imonitoring.Dashboard) {
		t.Fatal("monitoring.Dashboard differs from dashboard.json")
	}
	queries, err := imonitoring.DashboardQueries(imonitoring.DefaultNamespace, imonitoring.DefaultWebhookName, "1m")
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) < 10 {
		t.Fatalf("dashboard.json has %d queries", len(queries))
	}
	known := ourMetrics(t)
	for _, n := range APIServerMetrics {
		known[n] = true
	}
	base := startPrometheus(t)
	read := map[string]bool{}
	for _, q := range queries {
		names, err := selectorNames(base, q.Expr)
		if err != nil {
			t.Errorf("panel %q: Prometheus refuses %s: %v", q.Panel, q.Expr, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("panel %q reads no metric: %s", q.Panel, q.Expr)
		}
		for _, n := range names {
			read[n] = true
			if !known[n] {
				t.Errorf("panel %q reads %s, which neither our /metrics nor the API server exports", q.Panel, n)
			}
		}
	}
	// The variables' queries (label_values(metric, label)) name existing metrics too.
	var d dashboard
	_ = json.Unmarshal(data, &d)
	labelValues := regexp.MustCompile(`label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	for _, v := range d.Templating.List {
		b, _ := json.Marshal(v.Query)
		for _, m := range labelValues.FindAllStringSubmatch(string(b), -1) {
			if !known[m[1]] {
				t.Errorf("variable %s reads %s, which our /metrics does not export", v.Name, m[1])
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, want := range []string{"ai_webhook_admission_requests_total", "ai_webhook_admission_duration_seconds_bucket",
		"ai_webhook_skipped_items_total", "ai_webhook_config_reloads_total", "ai_webhook_certificate_expiry_timestamp_seconds",
		"apiserver_admission_webhook_fail_open_count"} {
		if !read[want] {
			t.Errorf("no panel reads %s", want)
		}
	}
	var all []string
	for n := range read {
		all = append(all, n)
	}
	sort.Strings(all)
	t.Logf("%d queries read %v", len(queries), all)
}
