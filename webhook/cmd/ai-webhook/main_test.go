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
			if err != nil || strings.TrimSpace(again) != "[]" {
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
	bad := writeFile(t, "bad.yaml", "profiles:\n- name: gpu\n  container:\n    limits: {nvidia.com/gpu: 0.5}\n")
	unknown := writeFile(t, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: {ai.example.com/profile: gpt}\nspec:\n  containers: [{name: a, image: b}]\n")
	deploy := writeFile(t, "deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
	svc := writeFile(t, "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
	typo := writeFile(t, "typo.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{name: a, image: b, enviroment: []}]\n")
	reserved := writeFile(t, "reserved.yaml", "profiles:\n- name: p\n  pod: {labels: {gpu.corp.example/profile: other}}\n")
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
		{"no Pod in the file", []string{"inject", "-f", svc}, `kind "Service": give a Pod or a workload`, 1},
		{"misspelt field", []string{"inject", "-f", typo}, `unknown field "spec.containers[0].enviroment"`, 1},
		{"invalid profiles for inject", []string{"inject", "-f", unknown, "--profiles-file", bad}, "profiles[gpu].container.limits[nvidia.com/gpu]", 1},
		{"validate names the profile and field", []string{"validate", "--profiles-file", bad}, "profiles[gpu].container.limits[nvidia.com/gpu]", 1},
		{"validate refuses the webhook's own keys under --domain", []string{"validate", "--profiles-file", reserved, "--domain", "gpu.corp.example"}, "profiles[p].pod.labels[gpu.corp.example/profile]: Forbidden", 1},
		{"inject refuses profiles with the webhook's own keys", []string{"inject", "-f", unknown, "--profiles-file", reserved, "--domain", "gpu.corp.example"}, "reserved for the webhook itself", 1},
		{"serve refuses invalid profiles at start", []string{"serve", "--profiles-file", bad, "--tls-cert-file", bad, "--tls-key-file", bad}, "certificate", 1},
		{"serve flag validation", []string{"serve", "--reload-interval", "0s"}, "--reload-interval must be positive", 2},
		{"serve: pods metric on or off", []string{"serve", "--pods-out-of-date-metric", "yes"}, `--pods-out-of-date-metric must be on or off, got "yes"`, 2},
		{"serve refuses the metrics port on the admission port", []string{"serve", "--listen", ":8443", "--metrics-listen", ":8443"}, "--metrics-listen :8443 must differ from --listen", 2},
		{"audit: unknown output", []string{"audit", "-o", "yaml"}, "-o must be table or json", 2},
		{"audit: invalid profiles", []string{"audit", "--profiles-file", bad}, "profiles[gpu].container.limits[nvidia.com/gpu]", 1},
		{"audit: two profile sources", []string{"audit", "--from-cluster", "--profiles-file", bad}, "choose one", 2},
		{"audit: missing kubeconfig", []string{"audit", "--kubeconfig", "/nonexistent/kubeconfig"}, "kubeconfig /nonexistent/kubeconfig", 1},
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
	f := writeFile(t, "job.yaml", `apiVersion: batch/v1
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
`)
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

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// A Job whose template has no metadata (valid: the Pods get generated metadata) is injected.
func TestJobTemplateWithoutMetadataIsInjected(t *testing.T) {
	f := writeFile(t, "job.yaml", `apiVersion: batch/v1
kind: Job
metadata: {name: train}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: pytorch, image: img, resources: {limits: {nvidia.com/gpu: 1}}}]
`)
	profiles := writeFile(t, "profiles.yaml", "defaultProfile: gpu\nprofiles:\n- name: gpu\n  pod: {runtimeClassName: nvidia}\n")
	out, _, err := runCLI(t, "", "inject", "-f", f, "--profiles-file", profiles)
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(out), &job); err != nil {
		t.Fatal(err)
	}
	if tmpl := job.Spec.Template; tmpl.Annotations["ai.example.com/injected"] == "" || tmpl.Spec.RuntimeClassName == nil {
		t.Fatalf("template not injected:\n%s", out)
	}
}

// Every document of a multi-document file is handled: Pods and workloads are injected, other
// kinds are passed through, and stderr says which were skipped and why.
func TestEveryDocumentOfAFileIsHandled(t *testing.T) {
	f := writeFile(t, "all.yaml", `# leading comment
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
---
apiVersion: v1
kind: Pod
metadata:
  name: trainer
  labels: {ai.example.com/profile: pytorch-training}
spec:
  containers: [{name: pytorch, image: img}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: notebook}
spec:
  selector: {matchLabels: {app: nb}}
  template:
    metadata:
      labels: {app: nb, ai.example.com/profile: notebook}
    spec:
      containers: [{name: notebook, image: jupyter}]
---
apiVersion: v1
kind: Pod
metadata:
  name: opted-out
  annotations: {ai.example.com/inject: "false"}
spec:
  containers: [{name: a, image: b}]
`)
	out, stderr, err := runCLI(t, "", "inject", "-f", f)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	docs := strings.Split(out, "\n---\n")
	if len(docs) != 4 {
		t.Fatalf("want the 4 documents back, got %d:\n%s", len(docs), out)
	}
	for i, want := range []string{"kind: Service", "pytorch-training@", "notebook@", "name: opted-out"} {
		if !strings.Contains(docs[i], want) {
			t.Errorf("document %d lacks %q:\n%s", i+1, want, docs[i])
		}
	}
	if strings.Contains(docs[3], "injected") {
		t.Errorf("the opted-out Pod was injected:\n%s", docs[3])
	}
	for _, want := range []string{`object 1 (Service web): skipped: kind "Service"`, "object 4 (Pod opted-out): no profile applied: opted out"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	patches, stderr, err := runCLI(t, "", "inject", "-f", f, "--patch")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(patches))
	var n int
	for ; dec.More(); n++ {
		var ops []map[string]any
		if err := dec.Decode(&ops); err != nil {
			t.Fatalf("--patch must print one JSON patch per Pod document: %v\n%s", err, patches)
		}
	}
	if n != 3 || !strings.Contains(stderr, "object 2 (Pod trainer): ") {
		t.Fatalf("want 3 patches, each named on stderr; got %d\n%s", n, stderr)
	}
}

// A Pod the webhook leaves alone gives an empty patch, "[]", and stderr says why.
func TestSkippedPodGivesAnEmptyPatchAndSaysWhy(t *testing.T) {
	for _, tc := range []struct{ name, meta, why string }{
		{"opted out", "annotations: {ai.example.com/inject: \"false\"}", "opted out"},
		{"no profile", "labels: {app: web}", "no profile requested"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  "+tc.meta+"\nspec:\n  containers: [{name: a, image: b}]\n")
			out, stderr, err := runCLI(t, "", "inject", "-f", f, "--patch")
			if err != nil || strings.TrimSpace(out) != "[]" {
				t.Fatalf("want [], got %v %q", err, out)
			}
			if !strings.Contains(stderr, "no profile applied: "+tc.why) {
				t.Fatalf("stderr does not say why: %q", stderr)
			}
		})
	}
}

// The offline preview decides on the Pod as the API server hands it to the webhook: a volume
// the user wrote without its defaults is the same volume as the profile's.
func TestOfflineDecisionAppliesTheAPIDefaults(t *testing.T) {
	profiles := writeFile(t, "profiles.yaml", `profiles:
- name: p
  pod:
    volumes: [{name: settings, configMap: {name: settings}}]
    schedulerName: volcano
`)
	pod := writeFile(t, "pod.yaml", `apiVersion: v1
kind: Pod
metadata: {name: x, labels: {ai.example.com/profile: p}}
spec:
  volumes: [{name: settings, configMap: {name: settings}}]
  containers: [{name: a, image: b}]
`)
	out, _, err := runCLI(t, "", "inject", "-f", pod, "--profiles-file", profiles, "--explain")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "volumes") && !strings.Contains(line, "kept") {
			t.Errorf("the user's volume equals the profile's once defaulted, want kept: %s", line)
		}
		if strings.Contains(line, "schedulerName") && !strings.Contains(line, "applied") {
			t.Errorf("an unset schedulerName arrives as default-scheduler and is replaced: %s", line)
		}
	}
	if !strings.Contains(out, "kept") {
		t.Fatalf("no kept row:\n%s", out)
	}
}

// Valid workloads of every kind the command accepts go through every output mode.
func TestValidWorkloadsNeverCrash(t *testing.T) {
	tmpl := "metadata: {labels: {ai.example.com/profile: pytorch-training}}\n    spec: {containers: [{name: pytorch, image: img}]}"
	for kind, doc := range map[string]string{
		"PodTemplate":                              "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: t}\ntemplate:\n  metadata: {labels: {ai.example.com/profile: notebook}}\n  spec: {containers: [{name: nb, image: jupyter}]}\n",
		"ReplicationController":                    "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r}\nspec:\n  template:\n    " + tmpl + "\n",
		"StatefulSet":                              "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  serviceName: s\n  selector: {matchLabels: {a: b}}\n  volumeClaimTemplates: [{metadata: {name: data}, spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}]\n  template:\n    " + tmpl + "\n",
		"DaemonSet":                                "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    " + tmpl + "\n",
		"CronJob without template metadata":        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec: {restartPolicy: Never, containers: [{name: a, image: b, resources: {limits: {nvidia.com/gpu: 1}}}]}\n",
		"Pod with status and ephemeral containers": "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {ai.example.com/profile: llm-inference}}\nspec:\n  containers: [{name: server, image: vllm, resources: {limits: {memory: 16Gi}}}]\n  ephemeralContainers: [{name: debug, image: busybox}]\nstatus: {phase: Running}\n",
		"Pod with every defaulted volume":          "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {ai.example.com/profile: pytorch-training}}\nspec:\n  volumes: [{name: a}, {name: b, projected: {sources: [{serviceAccountToken: {path: t}}]}}, {name: c, image: {reference: m}}]\n  containers: [{name: pytorch, image: img}]\n",
	} {
		t.Run(kind, func(t *testing.T) {
			f := writeFile(t, "w.yaml", doc)
			for _, mode := range [][]string{nil, {"--patch"}, {"--explain"}} {
				if _, stderr, err := runCLI(t, "", append([]string{"inject", "-f", f}, mode...)...); err != nil {
					t.Fatalf("%v: %v\n%s", mode, err, stderr)
				}
			}
			// The mutated output is stable: feeding it back changes nothing.
			out, _, _ := runCLI(t, "", "inject", "-f", f)
			again, _, err := runCLI(t, out, "inject", "-f", "-", "--patch")
			if err != nil || strings.TrimSpace(again) != "[]" {
				t.Fatalf("second pass patched: %v %s\n%s", err, again, out)
			}
		})
	}
}

// A List, as kubectl get -o yaml prints it, is handled item by item.
func TestAListIsHandledItemByItem(t *testing.T) {
	f := writeFile(t, "list.yaml", `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a, labels: {ai.example.com/profile: notebook}}
  spec: {containers: [{name: nb, image: jupyter}]}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b}
`)
	out, stderr, err := runCLI(t, "", "inject", "-f", f)
	if err != nil {
		t.Fatal(err)
	}
	if docs := strings.Split(out, "\n---\n"); len(docs) != 2 || !strings.Contains(docs[0], "notebook@") || !strings.Contains(stderr, "object 2 (ConfigMap b): skipped") {
		t.Fatalf("want the injected Pod and the ConfigMap passed through:\n%s\n%s", out, stderr)
	}
}
