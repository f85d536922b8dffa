package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster/netns"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// What the dev stack (Pulumi.dev.yaml, copied as the e2e stack) deploys.
const (
	domain           = profile.DefaultDomain
	webhookNamespace = "ai-webhook"
	appName          = "ai-webhook" // Deployment, Service, ServiceAccount, PDB
	webhookConfig    = "ai-mutating-webhook"
	mwcType          = "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration"
	servingCertType  = "tls:index/locallySignedCert:LocallySignedCert"
	// The serving certificate's URN: component ai-webhook (WebhookStack), child ai-webhook-serving.
	servingCertURN = "urn:pulumi:" + stackName + "::ai-webhook::ai-webhook:index:WebhookStack$" +
		servingCertType + "::ai-webhook-serving"
)

// The webhook's keys, derived as the product derives them.
var (
	profileLabel = profile.KeysFor(domain).Profile
	injectLabel  = profile.KeysFor(domain).Inject
	injectedKey  = profile.KeysFor(domain).Injected
)

// summary is what `deploy --json` prints.
type summary struct {
	Operation string         `json:"operation"`
	Result    string         `json:"result"`
	Changes   map[string]int `json:"changes"`
	Steps     []struct {
		Op   string `json:"op"`
		Type string `json:"type"`
		URN  string `json:"urn"`
	} `json:"steps"`
	Outputs map[string]any `json:"outputs"`
	log     string         // the progress display and diagnostics (stderr)
}

// failNowUnless returns must: must(t.Run(...)) ends the test at a failed step, for tests whose
// steps build on each other.
func failNowUnless(t *testing.T) func(ok bool) {
	return func(ok bool) {
		if !ok {
			t.FailNow()
		}
	}
}

// destroyAtEnd saves the e2e stack's config and, when the test ends, destroys the stack, writes
// the config back and then runs then (what must follow the destroy).
func destroyAtEnd(t *testing.T, then ...func()) {
	t.Helper()
	stackFile := filepath.Join(env.workDir, "project", "Pulumi."+stackName+".yaml")
	saved, err := os.ReadFile(stackFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deploy(t, "destroy")
		if err := os.WriteFile(stackFile, saved, 0o644); err != nil {
			t.Error(err)
		}
		for _, f := range then {
			f()
		}
	})
}

// waitNamespaceGone waits until the stack's namespace is deleted, as a destroy leaves it.
func waitNamespaceGone(t *testing.T, kube kubernetes.Interface) {
	t.Helper()
	cluster.Eventually(t, time.Minute, "namespace "+webhookNamespace+" to go", func() error {
		if _, err := kube.CoreV1().Namespaces().Get(context.Background(), webhookNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s still exists (%v)", webhookNamespace, err)
		}
		return nil
	})
}

// deploy runs the deploy command, as users do, on the e2e stack.
func deploy(t *testing.T, args ...string) summary {
	t.Helper()
	return deployStack(t, stackName, args...)
}

// deployStack runs the deploy command on the named stack of the same project.
func deployStack(t *testing.T, stack string, args ...string) summary {
	t.Helper()
	args = append([]string{"--stack", stack, "--cwd", env.workDir + "/project", "--json"}, args...)
	cmd := exec.Command(env.deployBin, args...)
	cmd.Env = append(cmd.Environ(), "KUBECONFIG="+env.cluster.Kubeconfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("deploy %s: %v", argsForLog(args[5:]), time.Since(start).Round(time.Millisecond))
	var s summary
	if jerr := json.Unmarshal(stdout.Bytes(), &s); jerr != nil || err != nil {
		t.Fatalf("deploy %s: %v\nstdout:\n%s\nstderr (last lines):\n%s", argsForLog(args), err, stdout.String(), lastLines(stderr.String(), 60))
	}
	s.log = stderr.String()
	return s
}

// argsForLog joins a deploy command line for the test log, a long or multi-line --config value
// (a whole profiles document) shown by its size.
func argsForLog(args []string) string {
	out := slices.Clone(args)
	for i := 1; i < len(out); i++ {
		if k, v, ok := strings.Cut(out[i], "="); ok && out[i-1] == "--config" && (len(v) > 80 || strings.Contains(v, "\n")) {
			out[i] = fmt.Sprintf("%s=<%d bytes>", k, len(v))
		}
	}
	return strings.Join(out, " ")
}

// readmeLoop returns the ARGS of the `make pulumi` lines of README's block
// that changes the local stack's config, in order.
func readmeLoop(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^make pulumi ARGS="([^"]*)"`)
	blocks := strings.Split(string(data), "```")
	for i := 1; i < len(blocks); i += 2 {
		if strings.Contains(blocks[i], `make pulumi ARGS="config set`) {
			var loop []string
			for _, m := range line.FindAllStringSubmatch(blocks[i], -1) {
				loop = append(loop, m[1])
			}
			return loop
		}
	}
	t.Fatal(`README has no block with make pulumi ARGS="config set ..."`)
	return nil
}

// makePulumi runs `make pulumi ARGS=...` as a user does after `make up`,
// pointed at this test's cluster (it runs inside its namespace already),
// stack, state and deploy command, and returns what it printed.
func makePulumi(t *testing.T, args string) string {
	t.Helper()
	cmd := exec.Command("make", "-s", "--no-print-directory", "-C", env.root, "pulumi", "ARGS="+args,
		"IN_LOCAL_CLUSTER=", "DEPLOY="+env.deployBin, "LOCAL_PROJECT="+env.workDir+"/project", "LOCAL_STACK="+stackName,
		"LOCAL_PULUMI_DIR="+env.workDir, "LOCAL_PULUMI_HOME="+os.Getenv("PULUMI_HOME"), "LOCAL_PATH="+os.Getenv(envPath),
		"LOCAL_PULUMI_PASSPHRASE="+passphrase)
	cmd.Env = append(cmd.Environ(), "KUBECONFIG="+env.cluster.Kubeconfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("make pulumi ARGS=%q: %v\nstdout:\n%s\nstderr:\n%s", args, err, lastLines(stdout.String(), 40), lastLines(stderr.String(), 40))
	}
	t.Logf("make pulumi ARGS=%q:\n%s", args, lastLines(stdout.String(), 15))
	return stdout.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stepsOf lists the steps of s as "op type".
func stepsOf(s summary) []string {
	var steps []string
	for _, st := range s.Steps {
		steps = append(steps, st.Op+" "+st.Type)
	}
	return steps
}

// TestPulumiUpEndToEnd drives the dev stack through its life on the local
// cluster: up, admissions, no-change preview and refresh, a namespace
// selector switch, a forced certificate renewal, destroy. Each step builds
// on the previous one, so the first failure ends the test.
func TestPulumiUpEndToEnd(t *testing.T) {
	ctx := context.Background()
	kube := env.cluster.Client
	must := failNowUnless(t)

	must(t.Run("up creates every object, the Deployment becomes available", func(t *testing.T) {
		s := deploy(t, "up")
		if got := s.Outputs["mutating_webhook_name"]; got != webhookConfig {
			t.Fatalf("output mutating_webhook_name = %v, want %s", got, webhookConfig)
		}
		mwc, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the configuration named by mutating_webhook_name: %v", err)
		}
		st := currentStack(t, kube)
		if got := s.Outputs["ca_cert_pem"]; got != string(st.secret.Data["ca.crt"]) {
			t.Errorf("output ca_cert_pem differs from the Secret's ca.crt")
		}
		checkWebhookConfiguration(t, mwc, st)
		checkServedCertificates(t, kube, st)
	}))

	selected, unselected := "e2e-selected", "e2e-unselected"
	must(t.Run("a Pod in a selected namespace is stored mutated, one in an unselected namespace is not", func(t *testing.T) {
		createNamespace(t, kube, selected, map[string]string{injectLabel: "enabled"})
		createNamespace(t, kube, unselected, nil)
		waitMutating(t, kube, selected)
		pod := createPod(t, kube, selected, "trainer", false)
		checkMutated(t, pod)
		pod = createPod(t, kube, unselected, "trainer", false)
		checkUntouched(t, pod)
	}))

	must(t.Run("preview and refresh report no changes", func(t *testing.T) {
		s := deploy(t, "preview", "--expect-no-changes")
		if len(s.Steps) != 0 {
			t.Errorf("preview steps: %v", stepsOf(s))
		}
		s = deploy(t, "refresh", "--expect-no-changes")
		if len(s.Steps) != 0 {
			t.Errorf("refresh steps: %v", stepsOf(s))
		}
		start := time.Now()
		s = deploy(t, "up", "--expect-no-changes")
		t.Logf("no-change pulumi up: %v", time.Since(start).Round(time.Millisecond))
		if len(s.Steps) != 0 {
			t.Errorf("up steps: %v", stepsOf(s))
		}
	}))

	must(t.Run("README's loop switches the namespace selector: only the webhook configuration changes, Pods follow", func(t *testing.T) {
		optedOut := "e2e-opted-out"
		createNamespace(t, kube, optedOut, map[string]string{injectLabel: "disabled"})
		loop := readmeLoop(t)
		want := []string{"config set --path namespaceSelector.mode optOut", "preview", "up", "stack output mutating_webhook_name"}
		if !slices.Equal(loop, want) {
			t.Fatalf("README's loop is %q; this test walks %q", loop, want)
		}
		var out string
		for _, args := range loop {
			if args == "up" {
				// Between README's preview and up: what the up will do.
				if steps := stepsOf(deploy(t, "preview")); !slices.Equal(steps, []string{"update " + mwcType}) {
					t.Fatalf("steps = %v, want only an update of the MutatingWebhookConfiguration", steps)
				}
			}
			out = makePulumi(t, args)
		}
		if strings.TrimSpace(out) != webhookConfig {
			t.Errorf("stack output mutating_webhook_name printed %q, want %s", out, webhookConfig)
		}
		// The API server picks the new configuration up from its informer.
		waitMutating(t, kube, unselected)
		checkMutated(t, createPod(t, kube, unselected, "after-switch", false))
		checkMutated(t, createPod(t, kube, selected, "after-switch", false))
		checkUntouched(t, createPod(t, kube, optedOut, "after-switch", false))
		checkUntouched(t, createPod(t, kube, webhookNamespace, "after-switch", false))
	}))

	must(t.Run("forced certificate renewal replaces the serving cert, rolls the Deployment, admissions keep working", func(t *testing.T) {
		before := currentStack(t, kube)

		// Admission requests all through the renewal: every dry-run Pod must
		// come back mutated (the webhook fails open, so a broken call would
		// show as an unmutated Pod).
		var total, bad atomic.Int64
		var firstBad atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				pod, err := tryCreatePod(ctx, kube, selected, fmt.Sprintf("during-renewal-%d", i), true)
				total.Add(1)
				if err != nil || pod.Annotations[injectedKey] == "" {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf("pod %d: err=%v annotations=%v", i, err, podAnnotations(pod)))
				}
			}
		}()
		s := deploy(t, "up", "--replace", servingCertURN)
		close(stop)
		wg.Wait()

		steps := stepsOf(s)
		if !slices.ContainsFunc(steps, func(st string) bool {
			return strings.HasSuffix(st, " "+servingCertType) && strings.Contains(st, "replace")
		}) {
			t.Errorf("steps %v: the serving certificate was not replaced", steps)
		}
		if !slices.Contains(steps, "update kubernetes:apps/v1:Deployment") {
			t.Errorf("steps %v: the Deployment was not updated", steps)
		}
		if slices.ContainsFunc(steps, func(st string) bool { return strings.HasSuffix(st, mwcType) }) {
			t.Errorf("steps %v: the webhook configuration changed (the CA did not)", steps)
		}
		after := currentStack(t, kube)
		if bytes.Equal(after.cert.Raw, before.cert.Raw) {
			t.Fatal("the Secret still holds the old serving certificate")
		}
		if !bytes.Equal(after.secret.Data["ca.crt"], before.secret.Data["ca.crt"]) {
			t.Error("the CA changed")
		}
		// The renewed certificate goes into a new, newly named Secret; naming it is what rolls the pods.
		if after.secret.Name == before.secret.Name {
			t.Errorf("the Deployment still mounts Secret %s: the pods were not rolled", before.secret.Name)
		}
		checkServedCertificates(t, kube, after)
		t.Logf("admission requests during the renewal: %d, not mutated: %d", total.Load(), bad.Load())
		if total.Load() == 0 {
			t.Error("no admission request was made during the renewal")
		}
		if bad.Load() > 0 {
			t.Errorf("%d of %d admissions during the renewal were not mutated; first: %v", bad.Load(), total.Load(), firstBad.Load())
		}
		checkMutated(t, createPod(t, kube, selected, "after-renewal", false))
	}))

	must(t.Run("destroy leaves nothing behind", func(t *testing.T) {
		s := deploy(t, "destroy")
		if s.Result != "succeeded" {
			t.Fatalf("destroy: %+v", s)
		}
		if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("MutatingWebhookConfiguration after destroy: %v", err)
		}
		waitNamespaceGone(t, kube)
		managed := metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=pulumi"}
		for kind, list := range map[string]func() (int, error){
			"namespaces": func() (int, error) { l, err := kube.CoreV1().Namespaces().List(ctx, managed); return len(l.Items), err },
			"secrets":    func() (int, error) { l, err := kube.CoreV1().Secrets("").List(ctx, managed); return len(l.Items), err },
			"configmaps": func() (int, error) {
				l, err := kube.CoreV1().ConfigMaps("").List(ctx, managed)
				return len(l.Items), err
			},
			"services": func() (int, error) { l, err := kube.CoreV1().Services("").List(ctx, managed); return len(l.Items), err },
			"deployments": func() (int, error) {
				l, err := kube.AppsV1().Deployments("").List(ctx, managed)
				return len(l.Items), err
			},
			"pods": func() (int, error) {
				l, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + appName})
				return len(l.Items), err
			},
			"webhook configurations": func() (int, error) {
				l, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, managed)
				return len(l.Items), err
			},
		} {
			if n, err := list(); err != nil || n != 0 {
				t.Errorf("%s left after destroy: %d (%v)", kind, n, err)
			}
		}
		if out := deploy(t, "outputs"); len(out.Outputs) != 0 {
			t.Errorf("outputs after destroy: %v", out.Outputs)
		}
		// Pods are admitted again without the webhook.
		checkUntouched(t, createPod(t, kube, selected, "after-destroy", false))
	}))
}

// stack is what the deployed stack looks like in the cluster.
type stack struct {
	deployment *appsv1.Deployment
	secret     *corev1.Secret
	cert       *x509.Certificate
	caPool     *x509.CertPool
}

// currentStack reads the Deployment and its Secret and checks what must
// always hold: the objects exist with the expected spec, the Deployment is
// available, the serving certificate verifies for the Service's DNS name.
func currentStack(t *testing.T, kube kubernetes.Interface) stack {
	t.Helper()
	ctx := context.Background()
	st := stack{deployment: waitAvailable(t, kube)}
	d := st.deployment
	if got := *d.Spec.Replicas; got != 2 {
		t.Errorf("replicas = %d, want 2 (dev stack)", got)
	}
	var secretName, configMapName string
	for _, v := range d.Spec.Template.Spec.Volumes {
		switch {
		case v.Secret != nil:
			secretName = v.Secret.SecretName
		case v.ConfigMap != nil:
			configMapName = v.ConfigMap.Name
		}
	}
	secret, err := kube.CoreV1().Secrets(webhookNamespace).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Deployment's TLS Secret %q: %v", secretName, err)
	}
	st.secret = secret
	if secret.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %s, want %s", secret.Type, corev1.SecretTypeTLS)
	}
	for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey, "ca.crt"} {
		if len(secret.Data[k]) == 0 {
			t.Errorf("Secret %s has no %s", secretName, k)
		}
	}
	if _, err := tls.X509KeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey]); err != nil {
		t.Errorf("tls.crt and tls.key do not pair: %v", err)
	}
	st.cert = parseCert(t, secret.Data[corev1.TLSCertKey])
	st.caPool = x509.NewCertPool()
	if !st.caPool.AppendCertsFromPEM(secret.Data["ca.crt"]) {
		t.Fatal("ca.crt does not parse")
	}
	if _, err := st.cert.Verify(x509.VerifyOptions{
		DNSName: appName + "." + webhookNamespace + ".svc", Roots: st.caPool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		t.Errorf("serving certificate: %v", err)
	}
	cm, err := kube.CoreV1().ConfigMaps(webhookNamespace).Get(ctx, configMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Deployment's profiles ConfigMap %q: %v", configMapName, err)
	}
	if !strings.Contains(cm.Data["profiles.yaml"], "pytorch-training") {
		t.Errorf("profiles.yaml lacks the shipped examples:\n%s", cm.Data["profiles.yaml"])
	}
	sa, err := kube.CoreV1().ServiceAccounts(webhookNamespace).Get(ctx, appName, metav1.GetOptions{})
	if err != nil {
		t.Errorf("ServiceAccount: %v", err)
	} else if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount automounts a token")
	}
	svc, err := kube.CoreV1().Services(webhookNamespace).Get(ctx, appName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Service: %v", err)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.String() != "https" {
		t.Errorf("Service ports = %+v, want 443 -> https", svc.Spec.Ports)
	}
	if _, err := kube.PolicyV1().PodDisruptionBudgets(webhookNamespace).Get(ctx, appName, metav1.GetOptions{}); err != nil {
		t.Errorf("PodDisruptionBudget: %v", err)
	}
	return st
}

func checkWebhookConfiguration(t *testing.T, mwc *admissionregistrationv1.MutatingWebhookConfiguration, st stack) {
	t.Helper()
	if len(mwc.Webhooks) != 1 {
		t.Fatalf("%d webhooks, want 1", len(mwc.Webhooks))
	}
	w := mwc.Webhooks[0]
	svc := w.ClientConfig.Service
	if svc == nil || svc.Namespace != webhookNamespace || svc.Name != appName || svc.Path == nil || *svc.Path != "/mutate" {
		t.Errorf("clientConfig.service = %+v, want %s/%s /mutate", svc, webhookNamespace, appName)
	}
	if !bytes.Equal(w.ClientConfig.CABundle, st.secret.Data["ca.crt"]) {
		t.Error("caBundle is not the CA certificate of the Secret")
	}
	if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("sideEffects = %v", w.SideEffects)
	}
	if !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("admissionReviewVersions = %v", w.AdmissionReviewVersions)
	}
	if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Ignore {
		t.Errorf("failurePolicy = %v, want Ignore (dev stack)", w.FailurePolicy)
	}
	if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("reinvocationPolicy = %v", w.ReinvocationPolicy)
	}
	if w.MatchPolicy == nil || *w.MatchPolicy != admissionregistrationv1.Equivalent {
		t.Errorf("matchPolicy = %v", w.MatchPolicy)
	}
	var excluded []string
	for _, e := range w.NamespaceSelector.MatchExpressions {
		if e.Key == corev1.LabelMetadataName && e.Operator == metav1.LabelSelectorOpNotIn {
			excluded = e.Values
		}
	}
	for _, ns := range []string{metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease, webhookNamespace} {
		if !slices.Contains(excluded, ns) {
			t.Errorf("namespaceSelector does not exclude %s: %+v", ns, w.NamespaceSelector)
		}
	}
}

// checkServedCertificates dials every ready endpoint of the Service the way
// the API server does (server name <svc>.<ns>.svc, the caBundle as roots) and
// checks it serves the Secret's certificate.
func checkServedCertificates(t *testing.T, kube kubernetes.Interface, st stack) {
	t.Helper()
	ctx := context.Background()
	cluster.Eventually(t, time.Minute, "every endpoint to serve the Secret's certificate", func() error {
		slices, err := kube.DiscoveryV1().EndpointSlices(webhookNamespace).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + appName,
		})
		if err != nil {
			return err
		}
		var addrs []string
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					addrs = append(addrs, e.Addresses...)
				}
			}
		}
		if len(addrs) != 2 {
			return fmt.Errorf("ready endpoints %v, want 2", addrs)
		}
		for _, a := range addrs {
			if ip, err := netip.ParseAddr(a); err != nil || !netip.MustParsePrefix(netns.PrivateRange).Contains(ip) {
				return fmt.Errorf("endpoint %s is outside the local range", a)
			}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", net.JoinHostPort(a, "8443"), &tls.Config{
				ServerName: appName + "." + webhookNamespace + ".svc", RootCAs: st.caPool,
			})
			if err != nil {
				return fmt.Errorf("endpoint %s: %w", a, err)
			}
			served := conn.ConnectionState().PeerCertificates[0]
			_ = conn.Close()
			if !bytes.Equal(served.Raw, st.cert.Raw) {
				return fmt.Errorf("endpoint %s serves certificate serial %s, the Secret holds %s", a, served.SerialNumber, st.cert.SerialNumber)
			}
		}
		return nil
	})
}

func createNamespace(t *testing.T, kube kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := kube.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	// Pods need the namespace's default ServiceAccount (kube-controller-manager makes it).
	cluster.Eventually(t, 30*time.Second, "the default ServiceAccount", func() error {
		_, err := kube.CoreV1().ServiceAccounts(name).Get(context.Background(), "default", metav1.GetOptions{})
		return err
	})
}

// tryCreatePod creates a Pod asking for the pytorch-training profile.
func tryCreatePod(ctx context.Context, kube kubernetes.Interface, ns, name string, dryRun bool) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{profileLabel: "pytorch-training"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "trainer", Image: "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceCPU: mustQty("8"), corev1.ResourceMemory: mustQty("32Gi"),
				}},
			}},
		},
	}
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return kube.CoreV1().Pods(ns).Create(ctx, pod, opts)
}

func createPod(t *testing.T, kube kubernetes.Interface, ns, name string, dryRun bool) *corev1.Pod {
	t.Helper()
	pod, err := tryCreatePod(context.Background(), kube, ns, name, dryRun)
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return pod
}

// waitMutating waits until the webhook mutates Pods of ns (the API server
// learns about webhook configurations through an informer).
func waitMutating(t *testing.T, kube kubernetes.Interface, ns string) {
	t.Helper()
	i := 0
	cluster.Eventually(t, time.Minute, "the webhook to mutate Pods of "+ns, func() error {
		i++
		pod, err := tryCreatePod(context.Background(), kube, ns, fmt.Sprintf("probe-%d", i), true)
		if err != nil {
			return err
		}
		if pod.Annotations[injectedKey] == "" {
			return fmt.Errorf("a Pod in %s is not mutated yet", ns)
		}
		return nil
	})
}

func checkMutated(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if v := pod.Annotations[injectedKey]; !strings.HasPrefix(v, "pytorch-training@") {
		t.Errorf("pod %s/%s: %s = %q, want pytorch-training@<hash>", pod.Namespace, pod.Name, injectedKey, v)
	}
	if pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName != "nvidia" {
		t.Errorf("pod %s/%s: runtimeClassName = %v, want nvidia", pod.Namespace, pod.Name, pod.Spec.RuntimeClassName)
	}
	if q, ok := pod.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"]; !ok || q.String() != "1" {
		t.Errorf("pod %s/%s: nvidia.com/gpu limit = %v", pod.Namespace, pod.Name, pod.Spec.Containers[0].Resources.Limits)
	}
	if !slices.ContainsFunc(pod.Spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/dev/shm" }) {
		t.Errorf("pod %s/%s: no /dev/shm mount", pod.Namespace, pod.Name)
	}
}

func checkUntouched(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if v, ok := pod.Annotations[injectedKey]; ok {
		t.Errorf("pod %s/%s was mutated (%s=%s)", pod.Namespace, pod.Name, injectedKey, v)
	}
	if pod.Spec.RuntimeClassName != nil {
		t.Errorf("pod %s/%s got runtimeClassName %s", pod.Namespace, pod.Name, *pod.Spec.RuntimeClassName)
	}
}

func podAnnotations(pod *corev1.Pod) map[string]string {
	if pod == nil {
		return nil
	}
	return pod.Annotations
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func mustQty(s string) resource.Quantity { return resource.MustParse(s) }
