package webhookstack

import (
	"slices"
	"strings"
	"testing"
)

const (
	typeMAP        = "kubernetes:admissionregistration.k8s.io/v1:MutatingAdmissionPolicy"
	typeMAPBinding = "kubernetes:admissionregistration.k8s.io/v1:MutatingAdmissionPolicyBinding"
)

// Two profiles that compile.
const staticProfiles = `profiles:
- name: a
  pod: {runtimeClassName: nvidia}
- name: b
  container: {env: [{name: X, value: "1"}]}
`

func names(list []registered, path string) []string {
	var out []string
	for _, r := range list {
		out = append(out, str(r.Inputs, path))
	}
	slices.Sort(out)
	return out
}

func TestPolicyBackendDeploysOnlyPoliciesAndBindings(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{"backend": "policy", "profiles": staticProfiles, "image": "",
		"namespaceSelector": `{"mode":"optOut"}`})
	for _, typ := range []string{typeDeployment, typeService, typeMWC, typeNamespace, typeSecret, typeConfigMap, typeSelfSignedCert} {
		if n := len(res.byType(typ)); n > 0 {
			t.Errorf("%d %s registered, want none without a server", n, typ)
		}
	}
	want(t, "policies", names(res.byType(typeMAP), "metadata.name"), []string{"ai-webhook.a", "ai-webhook.b"})
	want(t, "bindings", names(res.byType(typeMAPBinding), "spec.policyName"), []string{"ai-webhook.a", "ai-webhook.b"})
	b := res.byType(typeMAPBinding)[0]
	sel := get(b.Inputs, "spec.matchResources.namespaceSelector.matchExpressions.0")
	want(t, "binding selector key", str(sel, "key"), "ai.example.com/inject")
	want(t, "binding selector operator", str(sel, "operator"), "NotIn")
	want(t, "reinvocation", str(res.byType(typeMAP)[0].Inputs, "spec.reinvocationPolicy"), "IfNeeded")
	want(t, "output", res.outputs[OutputPolicies].Value, []string{"ai-webhook.a", "ai-webhook.b"})
	// The Pods the webhook would refuse are refused by a ValidatingAdmissionPolicy.
	vap := res.one(t, "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy")
	if n := len(get(vap.Inputs, "spec.validations").([]any)); n != 4 {
		t.Errorf("%d validations, want 4", n)
	}
	vb := res.one(t, "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding")
	want(t, "refusals binding", strs(vb.Inputs, "spec.validationActions"), []string{"Deny"})
	want(t, "refusals selector", str(vb.Inputs, "spec.matchResources.namespaceSelector.matchExpressions.0.operator"), "NotIn")
}

// Two installations (issue 11) with policies: every cluster-scoped object is named after its
// instance and labelled with it, so neither replaces or deletes the other's.
func TestTwoInstancesWithPoliciesShareNoClusterScopedName(t *testing.T) {
	t.Parallel()
	clusterScoped := []string{typeMAP, typeMAPBinding, typeMWC,
		"kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy",
		"kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"}
	for _, backend := range []string{"policy", "auto"} {
		t.Run(backend, func(t *testing.T) {
			seen := map[string]string{} // kind/name -> instance
			for _, instance := range []string{"ai-webhook", "gpu-b"} {
				config := map[string]string{"backend": backend, "name": instance, "namespace": instance}
				if backend == "policy" {
					config["profiles"], config["image"] = staticProfiles, ""
				}
				res := mustRun(t, config)
				n := 0
				for _, typ := range clusterScoped {
					for _, r := range res.byType(typ) {
						n++
						key := typ + "/" + str(r.Inputs, "metadata.name")
						if other, ok := seen[key]; ok {
							t.Errorf("%s: instances %s and %s share it", key, other, instance)
						}
						seen[key] = instance
						if l := str(r.Inputs, "metadata.labels.app\\.kubernetes\\.io/instance"); l != instance {
							t.Errorf("%s: instance label %q, want %q", key, l, instance)
						}
					}
				}
				if n == 0 {
					t.Fatalf("instance %s: no cluster-scoped object", instance)
				}
			}
		})
	}
}

func TestPolicyBackendRefusesWhatOnlyTheWebhookServes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		config map[string]string
		want   []string
	}{
		{"a profile with DRA claims (the shipped examples)", map[string]string{"backend": "policy"},
			[]string{"ai-webhook:backend", "pytorch-training-dra needs the webhook", `use "auto" or "webhook"`}},
		{"cluster facts", map[string]string{"backend": "policy", "profiles": staticProfiles, "clusterFacts": "true"},
			[]string{"clusterFacts needs"}},
		{"an unknown backend", map[string]string{"backend": "policies"}, []string{`must be "webhook", "policy" or "auto", got "policies"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, tc.config)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want %q", err, w)
				}
			}
		})
	}
}

// auto: policies for the profiles that compile, the webhook for the rest; the webhook skips a
// Pod whenever a policy takes it, and is registered after the policies.
func TestAutoBackendSplitsTheProfilesBetweenPoliciesAndTheWebhook(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{"backend": "auto"}) // the shipped examples, one with DRA claims
	got := names(res.byType(typeMAP), "metadata.name")
	want(t, "policies", got, []string{"ai-webhook.llm-inference", "ai-webhook.llm-inference-oci-model", "ai-webhook.notebook", "ai-webhook.pytorch-training"})
	mwc := res.one(t, typeMWC)
	conds := get(mwc.Inputs, "webhooks.0.matchConditions").([]any)
	if len(conds) != 2 || str(conds[1], "name") != "not-served-by-a-policy" {
		t.Fatalf("match conditions %v, want not-mirror-pod and not-served-by-a-policy", conds)
	}
	expr := str(conds[1], "expression")
	for _, p := range []string{"llm-inference", "llm-inference-oci-model", "notebook", "pytorch-training"} {
		if !strings.Contains(expr, `== "`+p+`"`) {
			t.Errorf("the webhook does not skip Pods of %s:\n%s", p, expr)
		}
	}
	if strings.Contains(expr, `"pytorch-training-dra"`) {
		t.Error("the webhook skips the profile only it serves")
	}
	for _, p := range res.byType(typeMAP) {
		if !slices.ContainsFunc(mwc.Dependencies, func(urn string) bool { return strings.HasSuffix(urn, "::"+p.Name) }) {
			t.Errorf("the webhook configuration does not wait for %s", p.Name)
		}
	}
	if len(res.byType(typeDeployment)) != 1 {
		t.Error("auto runs no server")
	}
}

func TestWebhookBackendDeploysNoPolicy(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	if n := len(res.byType(typeMAP)) + len(res.byType(typeMAPBinding)); n > 0 {
		t.Errorf("%d policies or bindings with the default backend", n)
	}
	conds := get(res.one(t, typeMWC).Inputs, "webhooks.0.matchConditions").([]any)
	want(t, "match conditions", len(conds), 1)
}
