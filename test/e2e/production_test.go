package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// The second installation of TestProductionKnobsAndASecondInstall: its own stack, instance,
// namespace and domain.
const (
	canaryStack     = "canary"
	canaryName      = "canary"
	canaryNamespace = "ai-canary"
	canaryDomain    = "canary.example.com"
	knobsPort       = 10250 // what GKE private clusters let the control plane reach
)

// TestProductionKnobsAndASecondInstall deploys the e2e stack with knobs a real cluster needs
// (another port, tolerations, Pod labels, an autoscaler, a NetworkPolicy), checks the API server
// took every object and still calls the webhook through the Service on the new port, then runs
// a second stack (instance, namespace, domain of its own) beside it: each injects only the Pods
// that ask for its own domain's profiles. Both stacks are destroyed and the e2e stack's config
// restored at the end.
func TestProductionKnobsAndASecondInstall(t *testing.T) {
	ctx := context.Background()
	kube := env.cluster.Client
	must := failNowUnless(t)
	destroyAtEnd(t)

	must(t.Run("the e2e stack with other port, tolerations, labels, autoscaler and NetworkPolicy", func(t *testing.T) {
		deploy(t, "up",
			"--config", fmt.Sprintf("port=%d", knobsPort),
			"--config", "tolerations[0].key=nvidia.com/gpu", "--config", "tolerations[0].operator=Exists",
			"--config", "tolerations[0].effect=NoSchedule",
			"--config", "podLabels.team=platform",
			"--config", "autoscaling.enabled=true", "--config", "autoscaling.maxReplicas=3",
			"--config", "networkPolicy.enabled=true", "--config", "networkPolicy.apiServerCIDRs[0]="+cluster.PrivateAddress+"/32",
		)
		d, err := kube.AppsV1().Deployments(webhookNamespace).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod := d.Spec.Template
		c := pod.Spec.Containers[0]
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "https" && p.ContainerPort == knobsPort }) {
			t.Errorf("container ports %+v, want https on %d", c.Ports, knobsPort)
		}
		if !slices.Contains(c.Args, fmt.Sprintf("--listen=:%d", knobsPort)) {
			t.Errorf("args %v", c.Args)
		}
		if !slices.ContainsFunc(pod.Spec.Tolerations, func(tl corev1.Toleration) bool {
			return tl.Key == "nvidia.com/gpu" && tl.Operator == corev1.TolerationOpExists && tl.Effect == corev1.TaintEffectNoSchedule
		}) {
			t.Errorf("tolerations %+v", pod.Spec.Tolerations)
		}
		if pod.Labels["team"] != "platform" || pod.Labels["app.kubernetes.io/instance"] != appName {
			t.Errorf("pod template labels %v", pod.Labels)
		}
		svc, err := kube.CoreV1().Services(webhookNamespace).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p := svc.Spec.Ports; len(p) != 1 || p[0].Port != 443 || p[0].TargetPort.String() != "https" {
			t.Errorf("Service ports %+v, want 443 -> https", p)
		}
		np, err := kube.NetworkingV1().NetworkPolicies(webhookNamespace).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("NetworkPolicy: %v", err)
		}
		if in := np.Spec.Ingress; len(in) == 0 || len(in[0].Ports) != 1 || in[0].Ports[0].Port.IntValue() != knobsPort ||
			len(in[0].From) != 1 || in[0].From[0].IPBlock == nil || in[0].From[0].IPBlock.CIDR != cluster.PrivateAddress+"/32" {
			t.Errorf("NetworkPolicy ingress %+v", in)
		}
		// The metrics port (monitoring's metricsPort, on by default) only from Prometheus.
		if in := np.Spec.Ingress; len(in) != 2 || len(in[1].From) != 1 || in[1].From[0].PodSelector == nil ||
			in[1].From[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "prometheus" {
			t.Errorf("NetworkPolicy ingress %+v: want a second rule admitting the Prometheus Pods", in)
		}
		hpa, err := kube.AutoscalingV2().HorizontalPodAutoscalers(webhookNamespace).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("HorizontalPodAutoscaler: %v", err)
		}
		if hpa.Spec.ScaleTargetRef.Name != appName || hpa.Spec.MaxReplicas != 3 {
			t.Errorf("HorizontalPodAutoscaler spec %+v", hpa.Spec)
		}
		// The Deployment leaves replicas to the autoscaler: kube-controller-manager's HPA
		// controller raises them to minReplicas.
		cluster.Eventually(t, time.Minute, "the autoscaler to hold the Deployment at minReplicas", func() error {
			d, err := kube.AppsV1().Deployments(webhookNamespace).Get(ctx, appName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if *d.Spec.Replicas != 2 || d.Status.ReadyReplicas != 2 {
				return fmt.Errorf("replicas %d, ready %d", *d.Spec.Replicas, d.Status.ReadyReplicas)
			}
			return nil
		})
		// The autoscaler's replicas are not the program's: no drift.
		if s := deploy(t, "preview", "--expect-no-changes"); len(s.Steps) != 0 {
			t.Errorf("preview after the autoscaler scaled: %v", stepsOf(s))
		}
	}))

	shared := "e2e-two-installs"
	must(t.Run("the API server calls the webhook through the Service on the new port", func(t *testing.T) {
		createNamespace(t, kube, shared, map[string]string{
			injectLabel: "enabled", profile.KeysFor(canaryDomain).Inject: "enabled",
		})
		waitMutating(t, kube, shared)
		checkMutated(t, createPod(t, kube, shared, "knobs", true))
	}))

	// Destroyed by the last subtest; this is for a failure before it.
	t.Cleanup(func() { deployStack(t, canaryStack, "destroy") })
	must(t.Run("a second stack: its own names, selector and webhook configuration", func(t *testing.T) {
		s := deployStack(t, canaryStack, "up",
			"--config", "image=ai-webhook:dev", "--config", "name="+canaryName,
			"--config", "namespace="+canaryNamespace, "--config", "domain="+canaryDomain,
		)
		if got := s.Outputs["mutating_webhook_name"]; got != canaryName {
			t.Errorf("output mutating_webhook_name = %v, want %s", got, canaryName)
		}
		for _, name := range []string{webhookConfig, canaryName} {
			if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("webhook configuration %s: %v", name, err)
			}
		}
		checkSelects(t, kube, canaryNamespace, canaryName)
		checkSelects(t, kube, webhookNamespace, appName)
	}))

	must(t.Run("each installation injects only the Pods asking for its own profiles", func(t *testing.T) {
		canaryKeys := profile.KeysFor(canaryDomain)
		cluster.Eventually(t, time.Minute, "the second webhook to mutate Pods of "+shared, func() error {
			pod, err := tryCreateProfilePod(ctx, kube, shared, "canary-probe", canaryKeys.Profile)
			if err != nil {
				return err
			}
			if pod.Annotations[canaryKeys.Injected] == "" {
				return fmt.Errorf("not mutated by the second webhook yet: %v", pod.Annotations)
			}
			return nil
		})
		for _, tt := range []struct {
			label           string
			mine, notMine   string // injected annotations
			wantInjectedBy  string
			wantUntouchedBy string
		}{
			{profileLabel, injectedKey, canaryKeys.Injected, webhookConfig, canaryName},
			{canaryKeys.Profile, canaryKeys.Injected, injectedKey, canaryName, webhookConfig},
		} {
			pod, err := tryCreateProfilePod(ctx, kube, shared, "asks-"+tt.wantInjectedBy, tt.label)
			if err != nil {
				t.Fatal(err)
			}
			if v := pod.Annotations[tt.mine]; v == "" {
				t.Errorf("a Pod labelled %s was not injected by %s: annotations %v", tt.label, tt.wantInjectedBy, pod.Annotations)
			}
			if v, ok := pod.Annotations[tt.notMine]; ok {
				t.Errorf("a Pod labelled %s was injected by %s too (%s=%s)", tt.label, tt.wantUntouchedBy, tt.notMine, v)
			}
		}
	}))

	must(t.Run("destroying the second stack leaves the first serving", func(t *testing.T) {
		deployStack(t, canaryStack, "destroy")
		if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, canaryName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the second webhook configuration after destroy: %v", err)
		}
		checkMutated(t, createPod(t, kube, shared, "after-canary", true))
	}))
}

// checkSelects checks that an installation's Service selects exactly its own Pods, all ready.
func checkSelects(t *testing.T, kube kubernetes.Interface, ns, instance string) {
	t.Helper()
	ctx := context.Background()
	svc, err := kube.CoreV1().Services(ns).Get(ctx, instance, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Service %s/%s: %v", ns, instance, err)
	}
	if got := svc.Spec.Selector["app.kubernetes.io/instance"]; got != instance {
		t.Errorf("Service %s/%s selects instance %q", ns, instance, got)
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector})})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) == 0 {
		t.Errorf("Service %s/%s selects no Pods", ns, instance)
	}
	for _, p := range pods.Items {
		if p.Labels["app.kubernetes.io/instance"] != instance {
			t.Errorf("Service %s/%s selects Pod %s of instance %q", ns, instance, p.Name, p.Labels["app.kubernetes.io/instance"])
		}
	}
}

// tryCreateProfilePod dry-runs a Pod asking for pytorch-training under the given profile label.
func tryCreateProfilePod(ctx context.Context, kube kubernetes.Interface, ns, name, label string) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-", Labels: map[string]string{label: "pytorch-training"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "trainer", Image: "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: mustQty("8"), corev1.ResourceMemory: mustQty("32Gi")}},
			}},
		},
	}
	return kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}
