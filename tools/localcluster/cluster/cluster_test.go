package cluster

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The webhook's Pod runs the real binary: on the Pod's IP, with the mounted
// paths pointing at the files the runner wrote.
func TestWorkloadProcessArgsUsePodIPAndLocalVolumes(t *testing.T) {
	r := newRunner(nil, Options{WebhookBinary: "/bin/ai-webhook"}, "/state")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ai-webhook", Name: "ai-webhook-1", UID: "0123456789"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "ai-webhook",
			Args: []string{"serve", "--listen=:8443", "--metrics-listen=:9090", "--tls-cert-file=/etc/ai-webhook/tls/tls.crt",
				"--profiles-file=/etc/ai-webhook/profiles/profiles.yaml", "--domain=ai.example.com"},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "tls", MountPath: "/etc/ai-webhook/tls"},
				{Name: "profiles", MountPath: "/etc/ai-webhook/profiles"},
			},
			Env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", ValueFrom: &corev1.EnvVarSource{}}},
		}}},
		Status: corev1.PodStatus{PodIP: "10.250.0.130"},
	}
	dir := "/state/ai-webhook/ai-webhook-1"
	p := r.newPodProc(pod, dir)
	want := []string{"serve", "--listen=10.250.0.130:8443", "--metrics-listen=10.250.0.130:9090",
		"--tls-cert-file=" + filepath.Join(dir, "volumes/tls/tls.crt"),
		"--profiles-file=" + filepath.Join(dir, "volumes/profiles/profiles.yaml"),
		"--domain=ai.example.com"}
	if !slices.Equal(p.args, want) {
		t.Errorf("args:\n got  %q\n want %q", p.args, want)
	}
	if !slices.Equal(p.env, []string{"A=1"}) {
		t.Errorf("env = %q", p.env)
	}
}

func TestKeyToPathHonoursItems(t *testing.T) {
	data := map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}
	if got := keyToPath(data, nil); len(got) != 2 {
		t.Errorf("all keys: %v", got)
	}
	got := keyToPath(data, []corev1.KeyToPath{{Key: "tls.crt", Path: "certs/server.crt"}})
	if len(got) != 1 || string(got["certs/server.crt"]) != "c" {
		t.Errorf("items: %v", got)
	}
}

// kwok leaves the webhook's Pods to the runner: they are started without
// being Ready and never deleted by kwok; every other Pod gets kwok's
// defaults.
func TestKwokStagesSplitPodsByWorkloadLabel(t *testing.T) {
	type stage struct {
		Kind     string                `json:"kind"`
		Metadata struct{ Name string } `json:"metadata"`
		Spec     struct {
			Selector struct {
				MatchExpressions []struct {
					Key      string   `json:"key"`
					Operator string   `json:"operator"`
					Values   []string `json:"values"`
				} `json:"matchExpressions"`
			} `json:"selector"`
			Next map[string]any `json:"next"`
		} `json:"spec"`
	}
	docs := strings.Split(string(kwokStages), "---\n")
	got := map[string]string{}
	for _, d := range docs {
		var s stage
		if err := yaml.Unmarshal([]byte(d), &s); err != nil {
			t.Fatalf("stage does not parse: %v\n%s", err, d)
		}
		for _, e := range s.Spec.Selector.MatchExpressions {
			if e.Key == `.metadata.labels["`+WorkloadLabelKey+`"]` && slices.Equal(e.Values, []string{WorkloadLabelValue}) {
				got[s.Metadata.Name] = e.Operator
			}
		}
		if tmpl, _ := s.Spec.Next["statusTemplate"].(string); s.Metadata.Name == "pod-start-workload" &&
			!strings.Contains(tmpl, "status: \"False\"\n  type: Ready") {
			t.Errorf("pod-start-workload must leave the Pod not Ready:\n%s", tmpl)
		}
	}
	want := map[string]string{"pod-ready": "NotIn", "pod-start-workload": "In", "pod-delete": "NotIn"}
	for name, op := range want {
		if got[name] != op {
			t.Errorf("stage %s: workload label operator %q, want %q", name, got[name], op)
		}
	}
}
