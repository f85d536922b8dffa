package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/infra/webhookstack"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

// exposeService creates a Service in namespace ns and, by hand (no
// controller-manager runs), the EndpointSlice that points it at ip:port. The
// API server, with --enable-aggregator-routing, dials that address.
func exposeService(ctx context.Context, c kubernetes.Interface, ns, name, ip string, port int32) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(port),
		}}},
	}
	if _, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Service %s: %w", name, err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name + "-manual",
			Namespace: ns,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: name,
				discoveryv1.LabelManagedBy:   "controlplane-test",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if _, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create EndpointSlice for %s: %w", name, err)
	}
	return nil
}

// stackWebhook is the MutatingWebhookConfiguration the stack deploys
// (infra/webhookstack) in its optIn mode: Pods in namespaces labelled
// ai.example.com/inject=enabled, never the system namespaces nor the
// webhook's own (or the webhook could block its own restart), no mirror Pods,
// reinvoked when a later webhook changes the Pod. One difference: the stack
// defaults to failurePolicy Ignore, the tests use Fail so that a failed call
// shows up as an error rather than as an unmutated Pod. Options change one
// thing for a test.
func stackWebhook(opts ...func(*admissionregistrationv1.MutatingWebhook)) *admissionregistrationv1.MutatingWebhookConfiguration {
	w := admissionregistrationv1.MutatingWebhook{
		Name: webhookName,
		ClientConfig: admissionregistrationv1.WebhookClientConfig{
			Service: &admissionregistrationv1.ServiceReference{
				Namespace: webhookNamespace, Name: webhookService, Path: ptr.To("/mutate"), Port: ptr.To[int32](443),
			},
			CABundle: fx.ca.CertPEM,
		},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				Scope: ptr.To(admissionregistrationv1.NamespacedScope),
			},
		}},
		NamespaceSelector: ptr.To(webhookstack.NamespaceSelectorFor(
			webhookstack.NamespaceSelector{Mode: webhookstack.ModeOptIn}, domain, webhookNamespace)),
		MatchConditions: []admissionregistrationv1.MatchCondition{{
			Name: "not-mirror-pod",
			Expression: fmt.Sprintf("object == null || !has(object.metadata.annotations) || !(%q in object.metadata.annotations)",
				corev1.MirrorPodAnnotationKey),
		}},
		FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          ptr.To[int32](10),
		AdmissionReviewVersions: []string{"v1"},
		ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
	}
	for _, o := range opts {
		o(&w)
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: configName},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{w},
	}
}

func withFailurePolicy(p admissionregistrationv1.FailurePolicyType) func(*admissionregistrationv1.MutatingWebhook) {
	return func(w *admissionregistrationv1.MutatingWebhook) { w.FailurePolicy = &p }
}

func withService(name string) func(*admissionregistrationv1.MutatingWebhook) {
	return func(w *admissionregistrationv1.MutatingWebhook) { w.ClientConfig.Service.Name = name }
}

func withCABundle(pem []byte) func(*admissionregistrationv1.MutatingWebhook) {
	return func(w *admissionregistrationv1.MutatingWebhook) { w.ClientConfig.CABundle = pem }
}

func withTimeout(seconds int32) func(*admissionregistrationv1.MutatingWebhook) {
	return func(w *admissionregistrationv1.MutatingWebhook) { w.TimeoutSeconds = &seconds }
}

// installWebhook creates or replaces a MutatingWebhookConfiguration and
// deletes it when the test ends. The API server picks changes up from an
// informer, so callers wait for the effect they expect (see eventually).
func installWebhook(t *testing.T, cfg *admissionregistrationv1.MutatingWebhookConfiguration) {
	t.Helper()
	ctx := context.Background()
	api := fx.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	existing, err := api.Get(ctx, cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, cfg, metav1.CreateOptions{})
	case err == nil:
		cfg.ResourceVersion = existing.ResourceVersion
		_, err = api.Update(ctx, cfg, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("install MutatingWebhookConfiguration %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		if err := api.Delete(context.Background(), cfg.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete MutatingWebhookConfiguration %s: %v", cfg.Name, err)
		}
	})
}

// installStackWebhook installs the stack's configuration and waits until the
// API server calls the webhook with it.
func installStackWebhook(t *testing.T, ns string) {
	t.Helper()
	installWebhook(t, stackWebhook())
	cluster.Eventually(t, 30*time.Second, "the API server to call ai-webhook", func() error {
		p, err := createPod(ns, trainingPod("probe", optInLabel(gpuProfile)), true)
		if err != nil {
			return err
		}
		if _, ok := p.Annotations[injectedKey]; !ok {
			return fmt.Errorf("pod came back without %s", injectedKey)
		}
		return nil
	})
}

// newNamespace creates a namespace with a generated name.
func newNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns, err := fx.client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-", Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// optedInNamespace is a namespace the stack's selector picks.
func optedInNamespace(t *testing.T) string {
	t.Helper()
	return newNamespace(t, map[string]string{injectKey: "enabled"})
}

// createPod creates pod in ns (as a dry run when dryRun) and returns what the
// API server returned.
func createPod(ns string, pod *corev1.Pod, dryRun bool) (*corev1.Pod, error) {
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return fx.client.CoreV1().Pods(ns).Create(ctx, pod, opts)
}

func getPod(ns, name string) (*corev1.Pod, error) {
	return fx.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
}

// trainingPod is a single-container PyTorch Pod with CPU and memory limits,
// so that derived settings (OMP_NUM_THREADS, /dev/shm size) have inputs.
func trainingPod(name string, mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "train"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "trainer",
				Image: "registry.example/pytorch:2.6",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("4"),
					corev1.ResourceMemory: resource.MustParse("4Gi"),
				}},
			}},
		},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func optInLabel(profile string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Labels[profileKey] = profile }
}

func optInAnnotation(profile string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { setAnnotation(p, profileKey, profile) }
}

func optOut(p *corev1.Pod) { setAnnotation(p, injectKey, "false") }

func setAnnotation(p *corev1.Pod, k, v string) {
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[k] = v
}

// exposeForTest is exposeService until the test ends.
func exposeForTest(t *testing.T, name, ip string, port int32) {
	t.Helper()
	ctx := context.Background()
	if err := exposeService(ctx, fx.client, webhookNamespace, name, ip, port); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = fx.client.CoreV1().Services(webhookNamespace).Delete(ctx, name, metav1.DeleteOptions{})
		_ = fx.client.DiscoveryV1().EndpointSlices(webhookNamespace).Delete(ctx, name+"-manual", metav1.DeleteOptions{})
	})
}

// labelNamespace sets a label on an existing namespace for the test.
func labelNamespace(t *testing.T, ns, key, value string) {
	t.Helper()
	ctx := context.Background()
	patch := func(v any) error {
		data, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: v}}})
		_, err := fx.client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, data, metav1.PatchOptions{})
		return err
	}
	if err := patch(value); err != nil {
		t.Fatalf("label namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { _ = patch(nil) })
}

func randSuffix() string { return utilrand.String(6) }
