package webhookstack

import (
	"strings"
	"testing"
)

const typeResourceClaimTemplate = "kubernetes:resource.k8s.io/v1:ResourceClaimTemplate"

// Two DRA profiles naming two templates; a CPU profile naming none.
const draProfiles = `profiles:
- name: one
  container: {resourceClaims: [{name: gpu, resourceClaimTemplateName: single-gpu}]}
- name: two
  container: {resourceClaims: [{name: gpus, resourceClaimTemplateName: two-gpus}]}
- name: cpu
  container: {env: [{name: A, value: b}]}
`

func TestNoClaimTemplateNamespacesCreatesNoTemplate(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil) // the shipped examples name single-gpu
	if n := len(res.byType(typeResourceClaimTemplate)); n != 0 {
		t.Fatalf("no namespaces configured, %d ResourceClaimTemplate(s) created", n)
	}
}

func TestClaimTemplatesOfTheProfilesAreCreatedInEachNamespace(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{
		"profiles": draProfiles,
		"resourceClaimTemplates": `{"namespaces":["ml","research"],"deviceClassName":"gpu.example.com",` +
			`"templates":{"two-gpus":{"count":2}}}`,
	})
	got := map[string]registered{}
	for _, r := range res.byType(typeResourceClaimTemplate) {
		got[str(r.Inputs, "metadata.namespace")+"/"+str(r.Inputs, "metadata.name")] = r
	}
	if len(got) != 4 {
		t.Fatalf("templates %v, want single-gpu and two-gpus in ml and research", keysOf(got))
	}
	for _, tc := range []struct {
		key   string
		count int
	}{{"ml/single-gpu", 1}, {"research/single-gpu", 1}, {"ml/two-gpus", 2}, {"research/two-gpus", 2}} {
		r, ok := got[tc.key]
		if !ok {
			t.Errorf("no template %s; have %v", tc.key, keysOf(got))
			continue
		}
		want(t, tc.key+" devices", get(r.Inputs, "spec.spec.devices"), map[string]any{"requests": []any{map[string]any{
			"name":    "device",
			"exactly": map[string]any{"deviceClassName": "gpu.example.com", "allocationMode": "ExactCount", "count": float64(tc.count)},
		}}})
		want(t, tc.key+" instance label", str(r.Inputs, "metadata.labels.app\\.kubernetes\\.io/instance"), "ai-webhook")
		if r.Parent == "" || !strings.Contains(r.Parent, ComponentType) {
			t.Errorf("%s is not a child of the component: parent %q", tc.key, r.Parent)
		}
	}
}

func TestClaimTemplateEntryOverridesTheDeviceClass(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{
		"resourceClaimTemplates": `{"namespaces":["ml"],"templates":{"single-gpu":{"deviceClassName":"mig-1g.nvidia.com"}}}`,
	})
	r := res.one(t, typeResourceClaimTemplate)
	want(t, "name", str(r.Inputs, "metadata.name"), "single-gpu")
	want(t, "class", str(r.Inputs, "spec.spec.devices.requests.0.exactly.deviceClassName"), "mig-1g.nvidia.com")
	want(t, "count", num(r.Inputs, "spec.spec.devices.requests.0.exactly.count"), 1)
}

func TestInvalidClaimTemplatesFailNamingTheKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		config map[string]string
		want   string
	}{
		{"namespace name", map[string]string{"resourceClaimTemplates": `{"namespaces":["ML Team"]}`},
			`ai-webhook:resourceClaimTemplates.namespaces[0] must be a namespace name, got "ML Team"`},
		{"namespace twice", map[string]string{"resourceClaimTemplates": `{"namespaces":["ml","ml"]}`},
			`ai-webhook:resourceClaimTemplates.namespaces[1] lists "ml" twice`},
		{"device class name", map[string]string{"resourceClaimTemplates": `{"deviceClassName":"GPU"}`},
			`ai-webhook:resourceClaimTemplates.deviceClassName must be a DeviceClass name such as gpu.nvidia.com, got "GPU"`},
		{"no device", map[string]string{"resourceClaimTemplates": `{"count":0}`},
			`ai-webhook:resourceClaimTemplates.count must be between 1 and 32 devices, got 0`},
		{"more devices than a claim holds", map[string]string{"resourceClaimTemplates": `{"templates":{"single-gpu":{"count":33}}}`},
			`ai-webhook:resourceClaimTemplates.templates.single-gpu.count must be between 1 and 32 devices, got 33`},
		{"template no profile names", map[string]string{"resourceClaimTemplates": `{"templates":{"singel-gpu":{"count":2}}}`},
			`ai-webhook:resourceClaimTemplates.templates.singel-gpu names a template no profile uses (the profiles name: single-gpu)`},
		{"namespaces without a DRA profile", map[string]string{"profiles": "profiles:\n- {name: p, container: {env: [{name: A, value: b}]}}\n",
			"resourceClaimTemplates": `{"namespaces":["ml"]}`},
			`ai-webhook:resourceClaimTemplates.namespaces is set but no profile names a ResourceClaimTemplate`},
		{"field typo", map[string]string{"resourceClaimTemplates": `{"namespace":["ml"]}`},
			`ai-webhook:resourceClaimTemplates must be a JSON object matching the documented shape: json: unknown field "namespace"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantRefused(t, tc.config, tc.want) // so no template either
		})
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
