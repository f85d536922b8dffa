package inject

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

const factsProfiles = `
profiles:
- name: classes
  pod: {runtimeClassName: nvidia, priorityClassName: gpu-high}
- name: enforced
  pod: {runtimeClassName: nvidia, priorityClassName: gpu-high}
  enforce: [runtimeClassName, priorityClassName]
- name: gpu-only
  pod: {runtimeClassName: nvidia, runtimeClassWhen: gpu}
- name: gpu-only-adds-gpu
  containers: {select: all}
  pod: {runtimeClassName: nvidia, runtimeClassWhen: gpu}
  container: {limits: {nvidia.com/gpu: "1"}}
`

func TestClusterFactsDecideWhetherAClassIsSet(t *testing.T) {
	set := mustParse(t, factsProfiles)
	both := Facts{Known: true, RuntimeClasses: map[string]bool{"nvidia": true}, PriorityClasses: map[string]bool{"gpu-high": true}}
	none := Facts{Known: true}
	gpu := onMain(func(c *corev1.Container) { c.Resources.Limits = limits("nvidia.com/gpu", "1") })
	ownClasses := func(p *corev1.Pod) {
		p.Spec.RuntimeClassName = ptr.To("kata")
		p.Spec.PriorityClassName = "low"
	}
	for _, tc := range []struct {
		name        string
		facts       Facts
		pod         *corev1.Pod
		wantRC      string // the Pod's runtimeClassName afterwards
		wantPC      string
		wantMissing []Object
		wantWarn    string // a substring of the warnings, or "" for none about classes
	}{
		{"facts unknown: applied as without cluster awareness", Facts{}, newPod(withProfile("classes")), "nvidia", "gpu-high", nil, ""},
		{"both classes exist: applied", both, newPod(withProfile("classes")), "nvidia", "gpu-high", nil, ""},
		{"both classes missing: the Pod is admitted without them", none, newPod(withProfile("classes")), "", "",
			[]Object{{KindRuntimeClass, "nvidia"}, {KindPriorityClass, "gpu-high"}}, `classes: did not set pod runtimeClassName (RuntimeClass "nvidia" not found in the cluster)`},
		{"the Pod's own classes win and nothing is reported missing", none, newPod(withProfile("classes"), ownClasses), "kata", "low", nil, "classes: kept pod runtimeClassName"},
		{"an enforced missing class leaves the Pod's own", none, newPod(withProfile("enforced"), ownClasses), "kata", "low",
			[]Object{{KindRuntimeClass, "nvidia"}, {KindPriorityClass, "gpu-high"}}, `enforced: did not set pod priorityClassName (PriorityClass "gpu-high" not found`},
		{"runtimeClassWhen gpu: a GPU Pod gets the class", both, newPod(withProfile("gpu-only"), gpu), "nvidia", "", nil, ""},
		{"runtimeClassWhen gpu: a CPU Pod does not", both, newPod(withProfile("gpu-only")), "", "", nil, ""},
		{"runtimeClassWhen gpu: the profile's own GPU limit counts", both, newPod(withProfile("gpu-only-adds-gpu")), "nvidia", "", nil, ""},
		{"runtimeClassWhen gpu: a GPU Pod in a cluster without the class", none, newPod(withProfile("gpu-only"), gpu), "", "",
			[]Object{{KindRuntimeClass, "nvidia"}}, `RuntimeClass "nvidia" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			original, err := json.Marshal(tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			res, err := MutateWith(tc.pod, set, testKeys, tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			got := applyPatch(t, original, res)
			if rc := ptr.Deref(got.Spec.RuntimeClassName, ""); rc != tc.wantRC || got.Spec.PriorityClassName != tc.wantPC {
				t.Errorf("runtimeClassName %q priorityClassName %q, want %q %q", rc, got.Spec.PriorityClassName, tc.wantRC, tc.wantPC)
			}
			if !slices.Equal(res.Missing, tc.wantMissing) {
				t.Errorf("missing %v, want %v", res.Missing, tc.wantMissing)
			}
			for _, o := range tc.wantMissing {
				field := map[string]string{KindRuntimeClass: "runtimeClassName", KindPriorityClass: "priorityClassName"}[o.Kind]
				if it, ok := findItem(res, field, ""); !ok || it.Action != Missing || !strings.Contains(it.Reason, o.Name) {
					t.Errorf("explain row for %s: %+v", field, it)
				}
			}
			warnings := strings.Join(res.Warnings(), "\n")
			if tc.wantWarn != "" && !strings.Contains(warnings, tc.wantWarn) {
				t.Errorf("warnings %q, want one containing %q", warnings, tc.wantWarn)
			}
			if tc.wantWarn == "" && strings.Contains(warnings, "ClassName") {
				t.Errorf("unexpected warnings %q", warnings)
			}
		})
	}
}

func TestRuntimeClassWhenGPUExplainsACPUPod(t *testing.T) {
	res, err := MutateWith(newPod(withProfile("gpu-only")), mustParse(t, factsProfiles), testKeys, Facts{})
	if err != nil {
		t.Fatal(err)
	}
	it, ok := findItem(res, "runtimeClassName", "")
	if !ok || it.Action != NotUsed || !strings.Contains(it.Reason, "requests no GPU") {
		t.Fatalf("runtimeClassName row %+v, want not used because the Pod requests no GPU", it)
	}
}
