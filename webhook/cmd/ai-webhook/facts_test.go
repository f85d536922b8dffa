package main

import (
	"strings"
	"testing"
)

func TestInjectWithFactsLeavesOutAClassTheClusterLacks(t *testing.T) {
	pod := "../../examples/pods/pytorch-training.yaml" // its profile sets runtimeClassName: nvidia
	for _, tc := range []struct {
		name, facts string
		want        []string // in the --explain output
		wantWarning string   // on stderr of the default view
	}{
		{"the class exists", "runtimeClasses: [nvidia]\npriorityClasses: []\n", []string{"runtimeClassName", "applied"}, ""},
		{"the class is missing", "runtimeClasses: [kata]\npriorityClasses: []\n", []string{"runtimeClassName", "missing", `RuntimeClass "nvidia" not found in the cluster`},
			`Warning: pytorch-training: did not set pod runtimeClassName (RuntimeClass "nvidia" not found in the cluster)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			facts := writeFile(t, strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.facts)
			out, _, err := runCLI(t, "", "inject", "-f", pod, "--facts", facts, "--explain")
			if err != nil {
				t.Fatal(err)
			}
			var row string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "runtimeClassName") {
					row = l
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(row, w) {
					t.Errorf("explain row %q lacks %q", row, w)
				}
			}
			out, stderr, err := runCLI(t, "", "inject", "-f", pod, "--facts", facts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantWarning != "" && !strings.Contains(stderr, tc.wantWarning) {
				t.Errorf("stderr %q lacks %q", stderr, tc.wantWarning)
			}
			if got := strings.Contains(out, "runtimeClassName: nvidia"); got != (tc.wantWarning == "") {
				t.Errorf("mutated Pod has runtimeClassName nvidia: %v\n%s", got, out)
			}
		})
	}
	if _, _, err := runCLI(t, "", "inject", "-f", pod, "--facts", writeFile(t, "typo.yaml", "runtimeClass: [nvidia]\n")); err == nil {
		t.Error("a facts file with an unknown key must be refused")
	}
	if _, _, err := runCLI(t, "", "inject", "-f", pod, "--facts", "x", "--kubeconfig", "y"); err == nil {
		t.Error("--facts and --kubeconfig together must be refused")
	}
}

func TestWorkloadClaimTemplateIsLookedUpInTheWorkloadsNamespace(t *testing.T) {
	profiles := writeFile(t, "dra.yaml", `profiles:
- name: dra
  container:
    resourceClaims: [{name: gpu, resourceClaimTemplateName: single-gpu}]
`)
	deployment := writeFile(t, "deploy.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: trainer, namespace: ml}
spec:
  selector: {matchLabels: {app: trainer}}
  template:
    metadata: {labels: {app: trainer, ai.example.com/profile: dra}}
    spec:
      containers: [{name: main, image: trainer}]
`)
	for _, tc := range []struct {
		name, templates, want string
	}{
		{"the template exists in the workload's namespace", "[ml/single-gpu]", "applied"},
		{"the template exists only in another namespace", "[other/single-gpu]", "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			facts := writeFile(t, "facts.yaml", "runtimeClasses: []\npriorityClasses: []\nresourceClaimTemplates: "+tc.templates+"\n")
			out, _, err := runCLI(t, "", "inject", "-f", deployment, "--profiles-file", profiles, "--facts", facts, "--explain")
			if err != nil {
				t.Fatal(err)
			}
			var row string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "resourceClaims") {
					row = l
				}
			}
			if !strings.Contains(row, tc.want) {
				t.Errorf("resourceClaims row %q, want %q\n%s", row, tc.want, out)
			}
		})
	}
}
