package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestInjectEveryExamplePod(t *testing.T) {
	files, err := filepath.Glob("../../examples/pods/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("example pods: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, _, err := runCLI(t, "", "inject", "-f", f)
			if err != nil {
				t.Fatal(err)
			}
			var pod corev1.Pod
			if err := yaml.UnmarshalStrict([]byte(out), &pod); err != nil {
				t.Fatalf("output is not a Pod: %v\n%s", err, out)
			}
			if !strings.Contains(pod.Annotations["ai.example.com/injected"], "@") {
				t.Fatalf("no injected stamp:\n%s", out)
			}
			// The preview is idempotent: feeding it back changes nothing.
			again, _, err := runCLI(t, out, "inject", "-f", "-", "--patch")
			if err != nil || strings.TrimSpace(again) != "null" && strings.TrimSpace(again) != "[]" {
				t.Fatalf("second pass patched: %v %s", err, again)
			}
		})
	}
}

func TestInjectOutputs(t *testing.T) {
	pod := "../../examples/pods/pytorch-training.yaml"
	out, _, err := runCLI(t, "", "inject", "-f", pod, "--patch")
	if err != nil {
		t.Fatal(err)
	}
	var ops []map[string]any
	if err := json.Unmarshal([]byte(out), &ops); err != nil || len(ops) == 0 {
		t.Fatalf("--patch must print a JSON patch: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "", "inject", "-f", pod, "--explain")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"profile pytorch-training@", "WHERE", `container "trainer"`, "skipped", `pod: "INFO", profile: "WARN"`, "applied"} {
		if !strings.Contains(out, want) {
			t.Errorf("--explain output lacks %q:\n%s", want, out)
		}
	}
	_, stderr, err := runCLI(t, "", "inject", "-f", pod)
	if err != nil || !strings.Contains(stderr, "Warning: pytorch-training: kept") {
		t.Fatalf("the mutated Pod view must print warnings on stderr: %v %q", err, stderr)
	}
}

func TestCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("profiles:\n- name: gpu\n  container:\n    limits: {nvidia.com/gpu: 0.5}\n"), 0o600)
	unknown := filepath.Join(dir, "pod.yaml")
	os.WriteFile(unknown, []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: {ai.example.com/profile: gpt}\nspec:\n  containers: [{name: a, image: b}]\n"), 0o600)
	deploy := filepath.Join(dir, "deploy.yaml")
	os.WriteFile(deploy, []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"), 0o600)
	svc := filepath.Join(dir, "svc.yaml")
	os.WriteFile(svc, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"), 0o600)
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{name: a, image: b, enviroment: []}]\n"), 0o600)
	cases := []struct {
		name     string
		args     []string
		want     string
		wantCode int
	}{
		{"no command", nil, "a command is required", 2},
		{"unknown command", []string{"mutate"}, `unknown command "mutate"`, 2},
		{"inject without -f", []string{"inject"}, "-f pod.yaml is required", 2},
		{"patch and explain together", []string{"inject", "-f", unknown, "--patch", "--explain"}, "choose one", 2},
		{"unknown profile", []string{"inject", "-f", unknown}, "would deny this Pod: unknown profile \"gpt\"", 1},
		{"workload without a template", []string{"inject", "-f", deploy}, "Deployment has no /spec/template", 1},
		{"not a workload", []string{"inject", "-f", svc}, `kind "Service": give a Pod or a workload`, 1},
		{"misspelt field", []string{"inject", "-f", typo}, `unknown field "spec.containers[0].enviroment"`, 1},
		{"invalid profiles for inject", []string{"inject", "-f", unknown, "--profiles-file", bad}, "profiles[gpu].container.limits[nvidia.com/gpu]", 1},
		{"validate names the profile and field", []string{"validate", "--profiles-file", bad}, "profiles[gpu].container.limits[nvidia.com/gpu]", 1},
		{"serve refuses invalid profiles at start", []string{"serve", "--profiles-file", bad, "--tls-cert-file", bad, "--tls-key-file", bad}, "certificate", 1},
		{"serve flag validation", []string{"serve", "--reload-interval", "0s"}, "--reload-interval must be positive", 2},
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

func TestInjectAWorkloadTemplate(t *testing.T) {
	f := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(f, []byte(`apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          labels: {ai.example.com/profile: pytorch-training}
        spec:
          restartPolicy: Never
          containers: [{name: pytorch, image: img}]
`), 0o600)
	out, _, err := runCLI(t, "", "inject", "-f", f)
	if err != nil {
		t.Fatal(err)
	}
	var cj struct {
		Spec struct {
			JobTemplate struct {
				Spec struct {
					Template corev1.PodTemplateSpec `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(out), &cj); err != nil {
		t.Fatal(err)
	}
	tmpl := cj.Spec.JobTemplate.Spec.Template
	if tmpl.Spec.RuntimeClassName == nil || *tmpl.Spec.RuntimeClassName != "nvidia" || tmpl.Annotations["ai.example.com/injected"] == "" {
		t.Fatalf("template not injected:\n%s", out)
	}
}

func TestValidateListsProfiles(t *testing.T) {
	out, _, err := runCLI(t, "", "validate", "--profiles-file", "../../profile/examples.yaml")
	if err != nil || !strings.Contains(out, "llm-inference@") || !strings.Contains(out, "pytorch-training@") {
		t.Fatalf("%v\n%s", err, out)
	}
}
