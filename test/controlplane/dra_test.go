package controlplane

// GPUs through DRA (issue 12, item 2): a profile's resourceClaims reach the Pod through the
// real API server (resource.k8s.io/v1) when the template exists in the Pod's namespace, as the
// cluster-facts webhook sees it through its informer; otherwise the Pod is admitted without.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

const (
	draDeviceClass = "gpu.example.com"
	draTemplate    = "single-gpu"
	// draProfile is served by the cluster-facts webhook (factsProfiles).
	draProfile = `
- name: dra
  container:
    resourceClaims: [{name: gpu, resourceClaimTemplateName: ` + draTemplate + `}]
  derived: {hideGPUsFromNonGPUContainers: true}
`
)

// createDRAObjects creates a DeviceClass and, in ns, a ResourceClaimTemplate requesting one
// device of it, as an operator (or the stack) would.
func createDRAObjects(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	dc := &resourcev1.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: draDeviceClass},
		Spec: resourcev1.DeviceClassSpec{Selectors: []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{
			Expression: `device.driver == "` + draDeviceClass + `"`}}}}}
	if _, err := fx.client.ResourceV1().DeviceClasses().Create(ctx, dc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fx.client.ResourceV1().DeviceClasses().Delete(ctx, draDeviceClass, metav1.DeleteOptions{}) })
	tmpl := &resourcev1.ResourceClaimTemplate{ObjectMeta: metav1.ObjectMeta{Name: draTemplate, Namespace: ns},
		Spec: resourcev1.ResourceClaimTemplateSpec{Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{
			Requests: []resourcev1.DeviceRequest{{Name: "gpu", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: draDeviceClass}}}}}}}
	if _, err := fx.client.ResourceV1().ResourceClaimTemplates(ns).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// testDRAClaims runs against the cluster-facts webhook, which selects the namespaces labelled
// factsNSLabel: create admits a Pod of the given profile (dry run) into a namespace.
func testDRAClaims(t *testing.T, seen *warnings, create func(ns, profile string) (*corev1.Pod, error)) {
	withTemplate := newNamespace(t, map[string]string{factsNSLabel: "true"})
	without := newNamespace(t, map[string]string{factsNSLabel: "true"})
	createDRAObjects(t, withTemplate)

	// The template reaches the webhook's cache through the watch.
	cluster.Eventually(t, 30*time.Second, "the template to be seen and the claim added", func() error {
		p, err := create(withTemplate, "dra")
		if err != nil {
			return err
		}
		if len(p.Spec.ResourceClaims) == 0 {
			return fmt.Errorf("no spec.resourceClaims yet")
		}
		return nil
	})
	t.Run("a Pod in the template's namespace is admitted with the claims", func(t *testing.T) {
		p, err := create(withTemplate, "dra")
		if err != nil {
			t.Fatal(err)
		}
		want := []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: ptr.To(draTemplate)}}
		if len(p.Spec.ResourceClaims) != 1 || p.Spec.ResourceClaims[0].Name != want[0].Name || deref(p.Spec.ResourceClaims[0].ResourceClaimTemplateName) != draTemplate {
			t.Fatalf("spec.resourceClaims %+v, want %+v", p.Spec.ResourceClaims, want)
		}
		c := p.Spec.Containers[0]
		if len(c.Resources.Claims) != 1 || c.Resources.Claims[0].Name != "gpu" {
			t.Fatalf("container resources.claims %+v", c.Resources.Claims)
		}
		for _, e := range c.Env {
			if e.Name == "NVIDIA_VISIBLE_DEVICES" {
				t.Fatalf("the claimed container is hidden from its device: %+v", c.Env)
			}
		}
	})
	t.Run("kube-controller-manager creates the Pod's claim from the template", func(t *testing.T) {
		startClaimController(t)
		ctx := context.Background()
		pod, err := fx.client.CoreV1().Pods(withTemplate).Create(ctx, trainingPod("claimed-"+randSuffix(), optInLabel("dra")), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pod.Spec.ResourceClaims) != 1 {
			t.Fatalf("created without the claim: %+v", pod.Spec.ResourceClaims)
		}
		cluster.Eventually(t, 60*time.Second, "the resource-claim controller to create the Pod's ResourceClaim", func() error {
			claims, err := fx.client.ResourceV1().ResourceClaims(withTemplate).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, c := range claims.Items {
				for _, o := range c.OwnerReferences {
					if o.Kind == "Pod" && o.UID == pod.UID && len(c.Spec.Devices.Requests) == 1 &&
						c.Spec.Devices.Requests[0].Exactly != nil && c.Spec.Devices.Requests[0].Exactly.DeviceClassName == draDeviceClass {
						return nil
					}
				}
			}
			return fmt.Errorf("no ResourceClaim of %s's template owned by the Pod among %d claims", pod.Name, len(claims.Items))
		})
	})
	t.Run("a namespace without the template gets no claim, with a warning", func(t *testing.T) {
		seen.take()
		p, err := create(without, "dra")
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		if len(p.Spec.ResourceClaims) != 0 || len(p.Spec.Containers[0].Resources.Claims) != 0 {
			t.Fatalf("claims added without a template: %+v", p.Spec)
		}
		if w := seen.take(); !strings.Contains(w, "ResourceClaimTemplate "+draTemplate+" not found") {
			t.Fatalf("warnings %q", w)
		}
	})
}

// startClaimController runs the real kube-controller-manager with only its resource-claim
// controller, which makes each Pod's ResourceClaim from the template its spec names.
func startClaimController(t *testing.T) {
	t.Helper()
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	kcm, err := fx.cluster.Run("kube-controller-manager",
		"--kubeconfig="+fx.cluster.Kubeconfig,
		"--authentication-kubeconfig="+fx.cluster.Kubeconfig, "--authorization-kubeconfig="+fx.cluster.Kubeconfig,
		"--use-service-account-credentials=false", "--leader-elect=false", "--controllers=resource-claim-controller",
		"--bind-address=127.0.0.1", "--secure-port="+ports[0], "--profiling=false", "--v=1")
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, kcm, "kube-controller-manager")
}
