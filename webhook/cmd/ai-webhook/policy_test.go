package main

import (
	"bytes"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// The command prints a policy and a binding per profile that compiles, names each refused
// profile on stderr, and fails only when nothing compiles.
func TestPolicyPrintsCompiledProfilesAndNamesRefusedOnes(t *testing.T) {
	mixed := writeFile(t, "mixed.yaml", `profiles:
- name: static
  pod: {runtimeClassName: nvidia}
  container: {env: [{name: A, value: "1"}]}
- name: dra
  container: {resourceClaims: [{name: gpu, resourceClaimTemplateName: single-gpu}]}
`)
	onlyDRA := writeFile(t, "dra.yaml", "profiles:\n- name: dra\n  container: {resourceClaims: [{name: gpu, resourceClaimTemplateName: single-gpu}]}\n")
	cases := []struct {
		name       string
		args       []string
		wantKinds  []string // documents printed, in order
		wantStderr string
		wantErr    string
	}{
		{"mixed file: the static profile, the DRA one refused", []string{"--profiles-file", mixed},
			[]string{"MutatingAdmissionPolicy/ai-webhook.static", "MutatingAdmissionPolicyBinding/ai-webhook.static",
				"ValidatingAdmissionPolicy/ai-webhook.refusals", "ValidatingAdmissionPolicyBinding/ai-webhook.refusals"},
			"profile dra needs the webhook: container.resourceClaims", ""},
		{"--name: every object named after the instance", []string{"--profiles-file", mixed, "--name", "gpu-b"},
			[]string{"MutatingAdmissionPolicy/gpu-b.static", "MutatingAdmissionPolicyBinding/gpu-b.static",
				"ValidatingAdmissionPolicy/gpu-b.refusals", "ValidatingAdmissionPolicyBinding/gpu-b.refusals"},
			"profile dra needs the webhook: container.resourceClaims", ""},
		{"--name not a DNS label: usage error", []string{"--name", "Bad_Name"}, nil, "", "--name"},
		{"nothing compiles: exit 1", []string{"--profiles-file", onlyDRA}, nil, "profile dra needs the webhook", "no profile compiles (1 refused)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runCLI(t, "", append([]string{"policy"}, tc.args...)...)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr, tc.wantStderr)
			}
			var kinds []string
			for _, doc := range splitDocs(stdout) {
				var obj struct {
					Kind     string
					Metadata struct{ Name string }
				}
				if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
					t.Fatal(err)
				}
				kinds = append(kinds, obj.Kind+"/"+obj.Metadata.Name)
			}
			if strings.Join(kinds, " ") != strings.Join(tc.wantKinds, " ") {
				t.Errorf("printed %v, want %v", kinds, tc.wantKinds)
			}
		})
	}
}

// The binding's namespace selector is the stack's for the chosen mode; custom takes a selector.
func TestPolicyBindingFollowsTheNamespaceMode(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, `key: ai.example.com/inject`},
		{[]string{"--namespace-mode", "all"}, `- ai-webhook`},
		{[]string{"--namespace-mode", "custom", "--namespace-selector", "team=ml"}, `team: ml`},
		{[]string{"--namespace", "gpu-injector", "--domain", "gpu.corp.example"}, `key: gpu.corp.example/inject`},
	}
	for _, tc := range cases {
		stdout, _, err := runCLI(t, "", append([]string{"policy"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var b admissionregistrationv1.MutatingAdmissionPolicyBinding
		if err := yaml.Unmarshal([]byte(splitDocs(stdout)[1]), &b); err != nil {
			t.Fatal(err)
		}
		sel, _ := yaml.Marshal(b.Spec.MatchResources.NamespaceSelector)
		if !strings.Contains(string(sel), tc.want) || !strings.Contains(string(sel), "kube-system") {
			t.Errorf("%v: selector\n%s\nwant %q and the system exclusions", tc.args, sel, tc.want)
		}
	}
}

func TestPolicyFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--namespace-mode", "some"}, "--namespace-mode must be one of optIn, optOut, all, custom"},
		{[]string{"--namespace-mode", "custom"}, "needs --namespace-selector"},
		{[]string{"--namespace-selector", "a=b"}, "only with --namespace-mode custom"},
		{[]string{"--namespace-mode", "custom", "--namespace-selector", "a in b"}, "--namespace-selector"},
		{[]string{"--failure-policy", "fail"}, `must be Ignore or Fail, got "fail"`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		_, _, err := runCLI(t, "", append([]string{"policy"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 2 {
			t.Errorf("%v: want exit 2 with %q, got %v", tc.args, tc.want, err)
		}
	}
}

func splitDocs(s string) []string {
	var out []string
	for _, d := range strings.Split(s, "\n---\n") {
		if len(bytes.TrimSpace([]byte(d))) > 0 {
			out = append(out, d)
		}
	}
	return out
}
