package controlplane

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Case 1: what the API server stores for an opted-in Pod is the Pod with the
// profile applied, through the Service, the caBundle and the JSON patch:
// whether the Pod asks for its profile by label or by annotation, and when
// its namespace opts in with any spelling a Pod's inject key accepts, as the
// stack's selector lists them (here TRUE).
func TestOptedInPodIsStoredWithProfileApplied(t *testing.T) {
	requireControlPlane(t)
	ns := optedInNamespace(t)
	installStackWebhook(t, ns)
	spelled := newNamespace(t, map[string]string{injectKey: "TRUE"})

	for _, tc := range []struct {
		name, ns string
		optIn    func(*corev1.Pod)
	}{
		{"profile label", ns, optInLabel(gpuProfile)},
		{"profile annotation", ns, optInAnnotation(gpuProfile)},
		{"namespace opted in with another spelling", spelled, optInLabel(gpuProfile)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			if _, err := createPod(tc.ns, trainingPod(name, tc.optIn), false); err != nil {
				t.Fatalf("create: %v", err)
			}
			stored, err := getPod(tc.ns, name)
			if err != nil {
				t.Fatalf("get stored Pod: %v", err)
			}
			expectGPUProfile(t, stored)
		})
	}
}

// Case 2: outside the selected namespaces the API server never calls the
// webhook: kube-system and the webhook's own namespace stay excluded even
// when they carry the opt-in label.
func TestPodsOutsideSelectedNamespacesAreStoredUntouched(t *testing.T) {
	requireControlPlane(t)
	installStackWebhook(t, optedInNamespace(t))
	labelNamespace(t, "kube-system", injectKey, "enabled")

	for _, tc := range []struct{ name, ns string }{
		{"namespace without the opt-in label", newNamespace(t, nil)},
		{"namespace opted out", newNamespace(t, map[string]string{injectKey: "disabled"})},
		{"namespace opted out with another spelling", newNamespace(t, map[string]string{injectKey: "False"})},
		{"namespace labelled with a word that is not an opt-in", newNamespace(t, map[string]string{injectKey: "maybe"})},
		{"kube-system even when labelled", "kube-system"},
		{"the webhook's own namespace even when labelled", webhookNamespace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := trainingPod("untouched-"+randSuffix(), optInLabel(gpuProfile))
			if _, err := createPod(tc.ns, sent, false); err != nil {
				t.Fatalf("create in %s: %v", tc.ns, err)
			}
			stored, err := getPod(tc.ns, sent.Name)
			if err != nil {
				t.Fatalf("get stored Pod: %v", err)
			}
			for _, p := range untouchedProblems(stored, sent) {
				t.Error(p)
			}
		})
	}
}

// Case 3: a Pod can opt out in a selected namespace; a Pod naming a profile
// that does not exist is refused with the names of those that do.
func TestOptOutAndUnknownProfile(t *testing.T) {
	requireControlPlane(t)
	ns := optedInNamespace(t)
	installStackWebhook(t, ns)

	t.Run("opt-out annotation stores the Pod untouched", func(t *testing.T) {
		sent := trainingPod("opted-out", optInLabel(gpuProfile), optOut)
		if _, err := createPod(ns, sent, false); err != nil {
			t.Fatalf("create: %v", err)
		}
		stored, err := getPod(ns, sent.Name)
		if err != nil {
			t.Fatalf("get stored Pod: %v", err)
		}
		for _, p := range untouchedProblems(stored, sent) {
			t.Error(p)
		}
	})

	t.Run("unknown profile is refused listing the known profiles", func(t *testing.T) {
		_, err := createPod(ns, trainingPod("unknown-profile", optInLabel("gpu-trainnig")), false)
		if err == nil {
			t.Fatal("create succeeded, want it refused")
		}
		msg := err.Error()
		if !strings.Contains(msg, `admission webhook "`+webhookName+`" denied the request`) {
			t.Errorf("error does not say that %s denied the request: %s", webhookName, msg)
		}
		for _, known := range []string{gpuProfile, "notebook"} {
			if !strings.Contains(msg, known) {
				t.Errorf("error does not list the known profile %q: %s", known, msg)
			}
		}
		if _, err := getPod(ns, "unknown-profile"); !apierrors.IsNotFound(err) {
			t.Errorf("refused Pod: get returned %v, want NotFound", err)
		}
	})
}

// Case 4: a dry run returns the Pod as it would be stored, mutated, and stores
// nothing (the configuration declares sideEffects: None).
func TestDryRunReturnsMutatedPodAndStoresNothing(t *testing.T) {
	requireControlPlane(t)
	ns := optedInNamespace(t)
	installStackWebhook(t, ns)

	returned, err := createPod(ns, trainingPod("dry-run", optInLabel(gpuProfile)), true)
	if err != nil {
		t.Fatalf("dry-run create: %v", err)
	}
	expectGPUProfile(t, returned)
	if _, err := getPod(ns, "dry-run"); !apierrors.IsNotFound(err) {
		t.Errorf("after a dry run: get returned %v, want NotFound", err)
	}
}
