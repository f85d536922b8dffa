package main

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/audit"
)

func TestAuditCommandErrors(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "profiles:\n- name: gpu\n  container:\n    limits: {nvidia.com/gpu: 0.5}\n")
	cases := []struct {
		name     string
		args     []string
		want     string
		wantCode int
	}{
		{"unknown output", []string{"audit", "-o", "yaml"}, "-o must be table or json", 2},
		{"invalid profiles", []string{"audit", "--profiles-file", bad}, "profiles[gpu].container.limits[nvidia.com/gpu]", 1},
		{"missing kubeconfig", []string{"audit", "--kubeconfig", "/nonexistent/kubeconfig"}, "kubeconfig /nonexistent/kubeconfig", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, "", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != tc.wantCode {
				t.Fatalf("want exit %d with %q, got %v (exit %d)", tc.wantCode, tc.want, err, exitCode(err))
			}
		})
	}
}

// The reading half on a fake clientset: only the selected namespace's running Pods are
// read, and a ReplicaSet owner is lifted to its Deployment.
func TestAuditReadsTheSelectedNamespacesAndTheOwners(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"ai.example.com/inject": "enabled"}}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "ai-mutating-webhook"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "ai.example.com", NamespaceSelector: sel}},
	}
	ns := func(name string, l map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	}
	pod := func(ns, name string, phase corev1.PodPhase, owners ...metav1.OwnerReference) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owners}, Status: corev1.PodStatus{Phase: phase}}
	}
	rsOwner := metav1.OwnerReference{Kind: "ReplicaSet", Name: "web-1", Controller: ptr.To(true)}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "in", Name: "web-1",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", Controller: ptr.To(true)}}}}
	c := fake.NewClientset(mwc, rs,
		ns("in", map[string]string{"ai.example.com/inject": "enabled"}), ns("out", nil),
		pod("in", "web-1-a", corev1.PodRunning, rsOwner), pod("in", "done", corev1.PodSucceeded), pod("out", "other", corev1.PodRunning))

	in, selected, err := readCluster(context.Background(), c, "ai-mutating-webhook", "")
	if err != nil {
		t.Fatal(err)
	}
	if selected != 1 || len(in.Pods) != 1 || in.Pods[0].Name != "web-1-a" {
		t.Fatalf("selected %d namespaces, Pods %v; want the one running Pod of namespace in", selected, in.Pods)
	}
	want := audit.Ref{Kind: "Deployment", Namespace: "in", Name: "web"}
	if got := in.Parents[audit.Ref{Kind: "ReplicaSet", Namespace: "in", Name: "web-1"}]; got != want {
		t.Errorf("ReplicaSet's parent %v, want %v", got, want)
	}
	if _, _, err := readCluster(context.Background(), c, "missing", ""); err == nil || !strings.Contains(err.Error(), "MutatingWebhookConfiguration missing") {
		t.Errorf("a missing configuration: %v", err)
	}
}
