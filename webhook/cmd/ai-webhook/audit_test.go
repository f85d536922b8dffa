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

	in, selected, err := readCluster(context.Background(), c, &mwc.Webhooks[0])
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
}

// --from-cluster follows the configuration's Service to the Deployment it selects and reads
// the ConfigMap behind its --profiles-file.
func TestServedProfilesAreReadThroughTheService(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ai-webhook", Name: "ai-webhook"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "ai-webhook"}}}
	deploy := func(name string, l map[string]string, cm string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ai-webhook", Name: name},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "server", Args: []string{"serve", "--profiles-file=/p/profiles.yaml", "--domain=gpu.corp"},
					VolumeMounts: []corev1.VolumeMount{{Name: "profiles", MountPath: "/p"}}}},
				Volumes: []corev1.Volume{{Name: "profiles", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: cm}}}}},
			}}}}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ai-webhook", Name: "profiles-1"}, Data: map[string]string{"profiles.yaml": "served"}}
	hook := &admissionregistrationv1.MutatingWebhook{Name: "w", ClientConfig: admissionregistrationv1.WebhookClientConfig{
		Service: &admissionregistrationv1.ServiceReference{Namespace: "ai-webhook", Name: "ai-webhook"}}}
	c := fake.NewClientset(svc, cm, deploy("other", map[string]string{"app": "other"}, "nope"), deploy("ai-webhook", map[string]string{"app": "ai-webhook"}, "profiles-1"))
	data, domain, err := servedProfiles(context.Background(), c, hook)
	if err != nil || string(data) != "served" || domain != "gpu.corp" {
		t.Fatalf("servedProfiles = %q, %q, %v; want the ConfigMap's file and the Deployment's domain", data, domain, err)
	}
	byURL := &admissionregistrationv1.MutatingWebhook{Name: "w", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://x")}}
	if _, _, err := servedProfiles(context.Background(), c, byURL); err == nil || !strings.Contains(err.Error(), "give --profiles-file") {
		t.Errorf("a webhook called by URL: %v", err)
	}
}
