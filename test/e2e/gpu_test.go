package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/audit"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// What the GPU test deploys and names: the shipped DRA profile and its template, created by
// the stack in gpuNamespace (not in gpuElsewhere), requesting the default DeviceClass.
const (
	draProfile    = "pytorch-training-dra"
	draTemplate   = "single-gpu"
	draClaim      = "gpu"
	deviceClass   = "gpu.nvidia.com"
	gpuNamespace  = "e2e-gpu"
	gpuElsewhere  = "e2e-gpu-elsewhere"
	webhookSAUser = "system:serviceaccount:" + webhookNamespace + ":" + appName
)

// TestGPUClaimsAndDriftAudit deploys the e2e stack with cluster facts and the DRA profile's
// ResourceClaimTemplate, then proves on the local cluster (issue 12): a Pod asking for the DRA
// profile is stored with its claims and the real kube-controller-manager makes its
// ResourceClaim from the template the stack created; a Pod where the template is missing gets
// none; with the webhook stopped and failurePolicy Ignore, Pods asking for a profile are
// admitted unstamped and `ai-webhook audit` lists them once it is back; after a profile change
// through pulumi up, Pods of the old hash are listed and current ones are not. The stack's
// config and state are restored (destroyed) at the end.
func TestGPUClaimsAndDriftAudit(t *testing.T) {
	ctx := context.Background()
	kube := env.cluster.Client
	must := failNowUnless(t)
	destroyAtEnd(t, func() {
		_ = kube.ResourceV1().DeviceClasses().Delete(context.Background(), deviceClass, metav1.DeleteOptions{})
	})

	// The template's namespace must exist before pulumi up creates the template in it.
	createNamespace(t, kube, gpuNamespace, map[string]string{injectLabel: "enabled"})
	createNamespace(t, kube, gpuElsewhere, map[string]string{injectLabel: "enabled"})
	dc := &resourcev1.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: deviceClass}}
	if _, err := kube.ResourceV1().DeviceClasses().Create(ctx, dc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create DeviceClass: %v", err)
	}
	// The runner has no in-cluster ServiceAccount tokens, so the server reads the cluster with a
	// kubeconfig that impersonates its ServiceAccount: the API server authorizes every list and
	// watch against the ClusterRole the stack binds to it, as it would the mounted token.
	kubeconfig := serviceAccountKubeconfig(t, webhookSAUser)
	deploy(t, "up", "--config", "clusterFacts=true", "--config", "podsOutOfDateMetric=true",
		"--config", "resourceClaimTemplates.namespaces[0]="+gpuNamespace,
		"--config", "extraArgs[0]=--kubeconfig="+kubeconfig)
	waitAvailable(t, kube)

	var draPod *corev1.Pod
	must(t.Run("a DRA Pod gets its claims and the controller-manager makes its ResourceClaim from the stack's template", func(t *testing.T) {
		tmpl, err := kube.ResourceV1().ResourceClaimTemplates(gpuNamespace).Get(ctx, draTemplate, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the stack's ResourceClaimTemplate: %v", err)
		}
		if r := tmpl.Spec.Spec.Devices.Requests; len(r) != 1 || r[0].Exactly == nil || r[0].Exactly.DeviceClassName != deviceClass {
			t.Fatalf("template requests %+v, want one exactly of %s", r, deviceClass)
		}
		if _, err := kube.ResourceV1().ResourceClaimTemplates(gpuElsewhere).Get(ctx, draTemplate, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("template in %s, a namespace not configured: %v", gpuElsewhere, err)
		}
		waitMutating(t, kube, gpuNamespace)
		// The server sees the template through its informer once its cache has it; readiness
		// waited for the first list, which the template (created in the same up) may postdate.
		cluster.Eventually(t, time.Minute, "a dry-run DRA Pod to get its claim", func() error {
			p, err := createProfilePod(ctx, kube, gpuNamespace, "dra-probe", draProfile, true)
			if err != nil {
				return err
			}
			if len(p.Spec.ResourceClaims) == 0 {
				return fmt.Errorf("no claim yet (stamp %q)", p.Annotations[injectedKey])
			}
			return nil
		})
		pod, err := createProfilePod(ctx, kube, gpuNamespace, "dra-trainer", draProfile, false)
		if err != nil {
			t.Fatal(err)
		}
		draPod = pod
		if v := pod.Annotations[injectedKey]; !strings.HasPrefix(v, draProfile+"@") {
			t.Errorf("stamp %q, want %s@<hash>", v, draProfile)
		}
		want := []corev1.PodResourceClaim{{Name: draClaim, ResourceClaimTemplateName: ptr.To(draTemplate)}}
		if !equalClaims(pod.Spec.ResourceClaims, want) {
			t.Fatalf("spec.resourceClaims %+v, want %+v", pod.Spec.ResourceClaims, want)
		}
		if c := pod.Spec.Containers[0].Resources.Claims; len(c) != 1 || c[0].Name != draClaim {
			t.Errorf("container trainer claims %+v, want [%s]", c, draClaim)
		}
		if _, ok := pod.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"]; ok {
			t.Errorf("the DRA profile added a GPU limit: %v", pod.Spec.Containers[0].Resources.Limits)
		}
		cluster.Eventually(t, time.Minute, "kube-controller-manager to create the Pod's ResourceClaim", func() error {
			claims, err := kube.ResourceV1().ResourceClaims(gpuNamespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, c := range claims.Items {
				if !ownedBy(c.OwnerReferences, pod.UID) {
					continue
				}
				r := c.Spec.Devices.Requests
				if len(r) != 1 || r[0].Exactly == nil || r[0].Exactly.DeviceClassName != deviceClass {
					return fmt.Errorf("claim %s requests %+v, want %s as the template says", c.Name, r, deviceClass)
				}
				t.Logf("ResourceClaim %s/%s owned by Pod %s, device class %s", c.Namespace, c.Name, pod.Name, deviceClass)
				return nil
			}
			return fmt.Errorf("no ResourceClaim owned by Pod %s among %d", pod.Name, len(claims.Items))
		})

		// Where the template is missing the Pod is admitted without a claim (it would never
		// schedule), stamped: the webhook ran.
		elsewhere, err := createProfilePod(ctx, kube, gpuElsewhere, "dra-trainer", draProfile, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(elsewhere.Spec.ResourceClaims) != 0 || len(elsewhere.Spec.Containers[0].Resources.Claims) != 0 {
			t.Errorf("Pod in %s without the template got claims: %+v", gpuElsewhere, elsewhere.Spec.ResourceClaims)
		}
		if !strings.HasPrefix(elsewhere.Annotations[injectedKey], draProfile+"@") {
			t.Errorf("Pod in %s not stamped: %v", gpuElsewhere, elsewhere.Annotations)
		}
	}))

	must(t.Run("audit lists Pods admitted while the webhook was down, old hashes after a profile change, not current Pods", func(t *testing.T) {
		mwc, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if fp := mwc.Webhooks[0].FailurePolicy; fp == nil || *fp != admissionregistrationv1.Ignore {
			t.Fatalf("failurePolicy %v, want Ignore", fp)
		}

		scaleWebhook(t, kube, 0)
		waitFailingOpen(t, kube, gpuNamespace)
		bare, err := createProfilePod(ctx, kube, gpuNamespace, "fail-open-bare", "pytorch-training", false)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := bare.Annotations[injectedKey]; ok {
			t.Fatalf("webhook stopped, yet the Pod was stamped %q", v)
		}
		webPods := createProfileDeployment(t, kube, gpuNamespace, "fail-open-web", "pytorch-training")
		scaleWebhook(t, kube, 2)
		waitAvailable(t, kube)
		waitMutating(t, kube, gpuNamespace)
		current, err := createProfilePod(ctx, kube, gpuNamespace, "current-before", "pytorch-training", false)
		if err != nil {
			t.Fatal(err)
		}
		oldStamp := current.Annotations[injectedKey]
		if !strings.HasPrefix(oldStamp, "pytorch-training@") {
			t.Fatalf("webhook back, Pod stamped %q", oldStamp)
		}

		rep := runAudit(t)
		listed := listedIn(rep, gpuNamespace)
		for _, name := range append([]string{bare.Name}, webPods...) {
			if got := listed[name]; got.Why != audit.Unstamped {
				t.Errorf("Pod %s admitted without the webhook: listed %+v, want %q", name, got, audit.Unstamped)
			}
		}
		if g := groupOf(rep, webPods[0]); g.Workload != (audit.Ref{Kind: "Deployment", Namespace: gpuNamespace, Name: "fail-open-web"}) {
			t.Errorf("Pod %s grouped under %v, want its Deployment", webPods[0], g.Workload)
		}
		for _, name := range []string{current.Name, draPod.Name} {
			if got, ok := listed[name]; ok {
				t.Errorf("current Pod %s listed: %+v", name, got)
			}
		}

		// A profile change through pulumi up: the ConfigMap is replaced and the Deployment rolls.
		changed := strings.Replace(string(profile.Examples), "value: WARN", "value: INFO", 1)
		if changed == string(profile.Examples) {
			t.Fatal("the shipped examples have no NCCL_DEBUG WARN to change")
		}
		deploy(t, "up", "--config", "profiles="+changed)
		waitAvailable(t, kube)
		cluster.Eventually(t, 2*time.Minute, "Pods to be stamped with the new profile hash", func() error {
			p, err := createProfilePod(ctx, kube, gpuNamespace, "hash-probe", "pytorch-training", true)
			if err != nil {
				return err
			}
			if s := p.Annotations[injectedKey]; s == "" || s == oldStamp {
				return fmt.Errorf("stamp %q", s)
			}
			return nil
		})
		after, err := createProfilePod(ctx, kube, gpuNamespace, "current-after", "pytorch-training", false)
		if err != nil {
			t.Fatal(err)
		}

		rep = runAudit(t)
		listed = listedIn(rep, gpuNamespace)
		if got := listed[current.Name]; got.Why != audit.OldHash || got.Stamp != oldStamp {
			t.Errorf("Pod %s of the old hash: listed %+v, want %q with stamp %s", current.Name, got, audit.OldHash, oldStamp)
		}
		if got := listed[bare.Name]; got.Why != audit.Unstamped {
			t.Errorf("Pod %s: listed %+v, want %q", bare.Name, got, audit.Unstamped)
		}
		for _, name := range []string{after.Name, draPod.Name} { // the DRA profile did not change
			if got, ok := listed[name]; ok {
				t.Errorf("current Pod %s listed: %+v", name, got)
			}
		}

		// The servers' ai_webhook_pods_out_of_date (podsOutOfDateMetric: a metadata-only watch
		// of every Pod through the ServiceAccount's ClusterRole) counts the same Pods, in every
		// namespace: at least this test's three pytorch-training Pods, no DRA Pod, and exactly
		// what the same decision makes of a list of every Pod.
		set, err := profile.Parse([]byte(changed), profile.DefaultDomain)
		if err != nil {
			t.Fatal(err)
		}
		cluster.Eventually(t, time.Minute, "every replica's ai_webhook_pods_out_of_date to match the cluster's Pods", func() error {
			want, err := outOfDateByList(ctx, kube, set)
			if err != nil {
				return err
			}
			if want["pytorch-training"] < 3 || want[draProfile] != 0 {
				return fmt.Errorf("the cluster's Pods: %v, want at least 3 pytorch-training Pods out of date and no %s Pod", want, draProfile)
			}
			return scrapedOutOfDate(ctx, kube, want)
		})
	}))
}

// outOfDateByList decides every Pod of the cluster from its labels and annotations, as the
// server's metric does, from one list.
func outOfDateByList(ctx context.Context, kube kubernetes.Interface, set *profile.Set) (map[string]float64, error) {
	pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, n := range set.Names() {
		out[n] = 0
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if name, stale := audit.MetaOf(p.Labels, p.Annotations, profile.KeysFor(domain)).OutOfDate(set, profile.KeysFor(domain)); stale {
			out[name]++
		}
	}
	return out, nil
}

var outOfDateLine = regexp.MustCompile(`(?m)^ai_webhook_pods_out_of_date\{profile="([^"]+)"\} (\S+)$`)

// scrapedOutOfDate reads ai_webhook_pods_out_of_date from every webhook Pod's metrics port and
// compares it with want.
func scrapedOutOfDate(ctx context.Context, kube kubernetes.Interface, want map[string]float64) error {
	pods, err := kube.CoreV1().Pods(webhookNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + appName})
	if err != nil {
		return err
	}
	if len(pods.Items) == 0 {
		return fmt.Errorf("no webhook Pod")
	}
	for _, p := range pods.Items {
		resp, err := http.Get("http://" + net.JoinHostPort(p.Status.PodIP, defaultMetricsPort) + "/metrics")
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		got := map[string]float64{}
		for _, m := range outOfDateLine.FindAllStringSubmatch(string(body), -1) {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				return err
			}
			got[m[1]] = v
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("webhook Pod %s: ai_webhook_pods_out_of_date %v, the cluster's Pods %v", p.Name, got, want)
		}
	}
	fmt.Printf("ai_webhook_pods_out_of_date of %d replicas: %v\n", len(pods.Items), want)
	return nil
}

// serviceAccountKubeconfig writes a copy of the cluster's admin kubeconfig that impersonates
// user and returns its path.
func serviceAccountKubeconfig(t *testing.T, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = user
	}
	path := filepath.Join(env.workDir, "webhook-sa.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// createProfilePod creates a Pod with one container "trainer" asking for profile p.
func createProfilePod(ctx context.Context, kube kubernetes.Interface, ns, name, p string, dryRun bool) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{profileLabel: p}},
		Spec:       trainerSpec(),
	}
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return kube.CoreV1().Pods(ns).Create(ctx, pod, opts)
}

func trainerSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{
		Name: "trainer", Image: "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
			corev1.ResourceCPU: mustQty("8"), corev1.ResourceMemory: mustQty("32Gi"),
		}},
	}}}
}

// createProfileDeployment creates a one-replica Deployment whose Pods ask for profile p and
// returns the names of its Pods once the ReplicaSet made them.
func createProfileDeployment(t *testing.T, kube kubernetes.Interface, ns, name, p string) []string {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name, profileLabel: p}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: trainerSpec()},
		},
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var names []string
	cluster.Eventually(t, time.Minute, "the Deployment's Pod", func() error {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d Pods", len(pods.Items))
		}
		if v, ok := pods.Items[0].Annotations[injectedKey]; ok {
			t.Fatalf("webhook stopped, yet Pod %s was stamped %q", pods.Items[0].Name, v)
		}
		names = []string{pods.Items[0].Name}
		return nil
	})
	return names
}

// scaleWebhook sets the webhook Deployment's replicas and, scaling to zero, waits until its
// Pods are gone.
func scaleWebhook(t *testing.T, kube kubernetes.Interface, n int32) {
	t.Helper()
	ctx := context.Background()
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
	if _, err := kube.AppsV1().Deployments(webhookNamespace).Patch(ctx, appName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("scale the webhook to %d: %v", n, err)
	}
	if n > 0 {
		return
	}
	cluster.Eventually(t, time.Minute, "the webhook Pods to go", func() error {
		pods, err := kube.CoreV1().Pods(webhookNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + appName})
		if err != nil {
			return err
		}
		if len(pods.Items) > 0 {
			return fmt.Errorf("%d webhook Pods left", len(pods.Items))
		}
		return nil
	})
}

// waitAvailable waits until the webhook Deployment has rolled out all its replicas and returns
// it as it was then.
func waitAvailable(t *testing.T, kube kubernetes.Interface) *appsv1.Deployment {
	t.Helper()
	var rolled *appsv1.Deployment
	cluster.Eventually(t, 2*time.Minute, "the webhook Deployment to roll out", func() error {
		d, err := kube.AppsV1().Deployments(webhookNamespace).Get(context.Background(), appName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := *d.Spec.Replicas
		if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != want ||
			d.Status.AvailableReplicas != want || d.Status.Replicas != want {
			return fmt.Errorf("not rolled out: %+v", d.Status)
		}
		rolled = d
		return nil
	})
	return rolled
}

// waitFailingOpen waits until Pods of ns are admitted without the webhook (failurePolicy
// Ignore with no endpoint to call).
func waitFailingOpen(t *testing.T, kube kubernetes.Interface, ns string) {
	t.Helper()
	cluster.Eventually(t, time.Minute, "Pods of "+ns+" to be admitted without the webhook", func() error {
		p, err := createProfilePod(context.Background(), kube, ns, "fail-open-probe", "pytorch-training", true)
		if err != nil {
			return err
		}
		if s := p.Annotations[injectedKey]; s != "" {
			return fmt.Errorf("still stamped %q", s)
		}
		return nil
	})
}

// runAudit runs `ai-webhook audit --kubeconfig K --from-cluster -o json`, the profiles being
// those the deployed webhook serves.
func runAudit(t *testing.T) audit.Report {
	t.Helper()
	cmd := exec.Command(filepath.Join(env.workDir, "ai-webhook"), "audit", "--kubeconfig", env.cluster.Kubeconfig, "--from-cluster", "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("audit: %v\nstderr:\n%s", err, stderr.String())
	}
	var rep audit.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("audit -o json: %v\n%s", err, stdout.String())
	}
	t.Logf("audit: %d Pods checked, %d workload(s) listed", rep.Checked, len(rep.Groups))
	return rep
}

// listedIn maps the names of the Pods the report lists in ns to their entries.
func listedIn(rep audit.Report, ns string) map[string]audit.Pod {
	out := map[string]audit.Pod{}
	for _, g := range rep.Groups {
		if g.Workload.Namespace != ns {
			continue
		}
		for _, p := range g.Pods {
			out[p.Name] = p
		}
	}
	return out
}

func groupOf(rep audit.Report, pod string) audit.Group {
	for _, g := range rep.Groups {
		if slices.ContainsFunc(g.Pods, func(p audit.Pod) bool { return p.Name == pod }) {
			return g
		}
	}
	return audit.Group{}
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	return slices.ContainsFunc(refs, func(r metav1.OwnerReference) bool { return r.UID == uid })
}

func equalClaims(a, b []corev1.PodResourceClaim) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.PodResourceClaim) bool {
		return x.Name == y.Name && ptr.Deref(x.ResourceClaimTemplateName, "") == ptr.Deref(y.ResourceClaimTemplateName, "") && x.ResourceClaimName == nil
	})
}
