package controlplane

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

const (
	sidecarLabel   = "test." + domain + "/sidecar"
	sidecarService = "sidecar-injector"
	sidecarName    = "sidecar.test." + domain
	sidecarAddress = "10.250.0.11"
	sidecarPort    = 9443
)

// Case 5: another mutating webhook, called after ours (configurations are
// called in name order), adds a container. With reinvocationPolicy IfNeeded
// the API server calls ai-webhook again, and the profile reaches the new
// container without duplicating anything it already added.
func TestReinvocationAppliesProfileToContainerAddedLater(t *testing.T) {
	requireControlPlane(t)
	ns := optedInNamespace(t)
	installStackWebhook(t, ns)

	sidecar := startTestWebhook(t, sidecarService, sidecarAddress, sidecarPort, addSidecar)
	installWebhook(t, sidecarWebhookConfig())
	cluster.Eventually(t, 30*time.Second, "the API server to call the sidecar webhook", func() error {
		_, err := createPod(ns, trainingPod("probe", optInLabel(gpuProfile), withSidecarLabel), true)
		if err == nil && sidecar.calls.Load() == 0 {
			return errors.New("the sidecar webhook has not been called yet")
		}
		return err
	})

	before := scrapeMetrics(t)
	if _, err := createPod(ns, trainingPod("reinvoked", optInLabel(gpuProfile), withSidecarLabel), false); err != nil {
		t.Fatalf("create: %v", err)
	}
	after := scrapeMetrics(t)

	stored, err := getPod(ns, "reinvoked")
	if err != nil {
		t.Fatalf("get stored Pod: %v", err)
	}
	if names := containerNames(stored); len(names) != 2 || names[0] != "trainer" || names[1] != "log-shipper" {
		t.Fatalf("containers = %v, want [trainer log-shipper]", names)
	}
	// Both containers, the sidecar included, carry the profile; nothing twice.
	expectGPUProfile(t, stored)
	calls := after.counter(metricWebhookRequests, map[string]string{"name": webhookName}) -
		before.counter(metricWebhookRequests, map[string]string{"name": webhookName})
	if calls < 2 {
		t.Errorf("the API server called %s %v times for one create, want at least 2 (reinvocation)", webhookName, calls)
	}
	t.Logf("one create: %v calls to %s", calls, webhookName)
}

func withSidecarLabel(p *corev1.Pod) { p.Labels[sidecarLabel] = "true" }

// sidecarWebhookConfig registers the sidecar webhook for Pods carrying the
// sidecar label only, so that it cannot disturb other tests. Its name sorts
// after the stack's configuration, so it is called after ai-webhook.
func sidecarWebhookConfig() *admissionregistrationv1.MutatingWebhookConfiguration {
	cfg := stackWebhook(withService(sidecarService), func(w *admissionregistrationv1.MutatingWebhook) {
		w.Name = sidecarName
		w.NamespaceSelector, w.MatchConditions = nil, nil
		w.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{sidecarLabel: "true"}}
		w.ReinvocationPolicy = ptr.To(admissionregistrationv1.NeverReinvocationPolicy)
	})
	cfg.Name = "zz-test-sidecar-injector"
	return cfg
}

// addSidecar appends a log-shipper container unless the Pod has one.
func addSidecar(_ *http.Request, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: err.Error()}}
	}
	resp := &admissionv1.AdmissionResponse{Allowed: true}
	for _, c := range pod.Spec.Containers {
		if c.Name == "log-shipper" {
			return resp
		}
	}
	patch, _ := json.Marshal([]map[string]any{{
		"op":   "add",
		"path": "/spec/containers/-",
		"value": corev1.Container{
			Name:  "log-shipper",
			Image: "registry.example/log-shipper:1.0",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("1"),
				corev1.ResourceMemory: resource.MustParse("256Mi"),
			}},
		},
	}})
	resp.Patch = patch
	resp.PatchType = ptr.To(admissionv1.PatchTypeJSONPatch)
	return resp
}

func containerNames(p *corev1.Pod) []string {
	var names []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	return names
}
