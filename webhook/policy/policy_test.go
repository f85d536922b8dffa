package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// What the API server does with these CEL expressions is proven against a real kube-apiserver
// in test/controlplane (TestPolicyBackendStoresTheSamePodsAsTheWebhook and
// TestPolicyDerivedValuesEqualTheWebhooks); these tests pin what the compiler decides.

func parse(t *testing.T, yaml string) *profile.Set {
	t.Helper()
	set, err := profile.Parse([]byte(yaml), profile.DefaultDomain)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func opts() Options {
	return Options{Domain: profile.DefaultDomain, NamespaceSelector: NamespaceSelector(ModeOptIn, metav1.LabelSelector{}, profile.DefaultDomain, "ai-webhook")}
}

func TestShippedProfilesCompileExceptThoseNeedingTheWebhook(t *testing.T) {
	set, err := profile.Parse(profile.Examples, profile.DefaultDomain)
	if err != nil {
		t.Fatal(err)
	}
	compiled, refused := CompileSet(set, opts())
	if len(compiled)+len(refused) != set.Len() {
		t.Fatalf("%d compiled + %d refused, want %d profiles", len(compiled), len(refused), set.Len())
	}
	for _, r := range refused {
		p, _ := set.Get(r.Profile)
		if len(p.Container.ResourceClaims) == 0 {
			t.Errorf("%s refused without DRA claims: %v", r.Profile, r)
		}
	}
	for _, name := range []string{"pytorch-training", "llm-inference", "notebook", "llm-inference-oci-model"} {
		if !slices.ContainsFunc(compiled, func(c *Compiled) bool { return c.Policy.Name == Name(DefaultInstance, name) }) {
			t.Errorf("shipped profile %s does not compile", name)
		}
	}
}

func TestProfilesNeedingTheWebhookAreRefusedNamingTheSettings(t *testing.T) {
	cases := []struct {
		name    string
		profile string
		want    []string // in the message
	}{
		{"DRA claims", `
- name: p
  container: {resourceClaims: [{name: gpu, resourceClaimTemplateName: single-gpu}]}`, []string{"container.resourceClaims"}},
		{"runtime class only for GPU Pods", `
- name: p
  pod: {runtimeClassName: nvidia, runtimeClassWhen: gpu}`, []string{"pod.runtimeClassWhen gpu"}},
		{"both, every one named", `
- name: p
  pod: {runtimeClassName: nvidia, runtimeClassWhen: gpu}
  container: {resourceClaims: [{name: gpu, resourceClaimTemplateName: single-gpu}]}`, []string{"container.resourceClaims", "pod.runtimeClassWhen gpu"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := parse(t, "profiles:"+tc.profile)
			p, _ := set.Get("p")
			_, err := Compile(p, opts())
			var r *RefusedError
			if !errors.As(err, &r) {
				t.Fatalf("got %v, want a RefusedError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not name %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "profile p needs the webhook: ") {
				t.Errorf("%q does not name the profile", err)
			}
		})
	}
}

func TestPolicyIsAPodCreateMutationReinvokedIfNeededAndBoundToTheNamespaces(t *testing.T) {
	set := parse(t, "profiles:\n- name: p\n  pod: {runtimeClassName: nvidia}\n")
	p, _ := set.Get("p")
	o := opts()
	o.FailurePolicy = admissionregistrationv1.Fail
	c, err := Compile(p, o)
	if err != nil {
		t.Fatal(err)
	}
	spec := c.Policy.Spec
	if spec.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("reinvocationPolicy %q", spec.ReinvocationPolicy)
	}
	if *spec.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy %q, want the option's", *spec.FailurePolicy)
	}
	rule := spec.MatchConstraints.ResourceRules[0]
	if !slices.Equal(rule.Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) || !slices.Equal(rule.Resources, []string{"pods"}) {
		t.Errorf("rule %+v, want CREATE pods", rule)
	}
	var names []string
	for _, m := range spec.MatchConditions {
		names = append(names, m.Name)
	}
	want := []string{"not-mirror-pod", "not-opted-out-by-annotation", "not-opted-out-by-label", "label-and-annotation-agree", "profile-p"}
	if !slices.Equal(names, want) {
		t.Errorf("match conditions %v, want %v", names, want)
	}
	if c.Binding.Spec.PolicyName != c.Policy.Name || c.Policy.Name != "ai-webhook.p" {
		t.Errorf("binding %q names policy %q", c.Binding.Name, c.Binding.Spec.PolicyName)
	}
	for _, l := range []map[string]string{c.Policy.Labels, c.Binding.Labels} {
		if l["app.kubernetes.io/instance"] != DefaultInstance {
			t.Errorf("labels %v, want the instance %s", l, DefaultInstance)
		}
	}
	if got := c.Binding.Spec.MatchResources.NamespaceSelector; got.String() != o.NamespaceSelector.String() {
		t.Errorf("binding selects %v, want %v", got, o.NamespaceSelector)
	}
	if c.Policy.Annotations["ai.example.com/injected"] != p.Stamp {
		t.Errorf("policy annotations %v, want the stamp %s", c.Policy.Annotations, p.Stamp)
	}
	for _, m := range spec.Mutations {
		if m.PatchType != admissionregistrationv1.PatchTypeJSONPatch || m.JSONPatch == nil {
			t.Errorf("mutation %+v is not a JSONPatch", m)
		}
	}
}

// Each setting becomes its own mutation, in inject's order; settings the profile leaves out
// add none.
func TestOneMutationPerSettingInTheInjectorsOrder(t *testing.T) {
	cases := []struct {
		name    string
		profile string
		want    []string // a substring of each mutation, in order
	}{
		{"only the stamp", "{name: p}", []string{"/metadata/annotations"}},
		{"pod settings", `{name: p, pod: {labels: {a: b}, runtimeClassName: nvidia, schedulerName: volcano, nodeSelector: {n: "1"},
  tolerations: [{key: k, operator: Exists}], volumes: [{name: v, emptyDir: {}}]}}`,
			[]string{`"/metadata/labels"`, `"ai.example.com/injected"`, `"/spec/runtimeClassName"`, `"/spec/schedulerName"`,
				`"/spec/nodeSelector"`, `"/spec/tolerations"`, `"/spec/volumes"`}},
		{"container settings after pod settings, derived last", `{name: p, pod: {volumes: [{name: v, emptyDir: {}}]},
  container: {limits: {example.com/fpga: "1"}, env: [{name: A, value: "1"}], volumeMounts: [{name: v, mountPath: /v}]},
  derived: {shm: {fraction: 0.5}, ompNumThreadsFromCPU: true, hideGPUsFromNonGPUContainers: true}}`,
			[]string{`"ai.example.com/injected"`, `"/spec/volumes"`, `"/resources/limits/example.com~1fpga"`, `"A"`, `"OMP_NUM_THREADS"`,
				`"/volumeMounts"`, `variables.shmSize`, `"NVIDIA_VISIBLE_DEVICES"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := parse(t, "profiles:\n- "+tc.profile+"\n")
			p, _ := set.Get("p")
			c, err := Compile(p, opts())
			if err != nil {
				t.Fatal(err)
			}
			muts := c.Policy.Spec.Mutations
			i := 0
			for _, w := range tc.want {
				for i < len(muts) && !strings.Contains(muts[i].JSONPatch.Expression, w) {
					i++
				}
				if i == len(muts) {
					t.Fatalf("no mutation (in order) contains %s; %d mutations", w, len(muts))
				}
				i++
			}
		})
	}
}

// The default profile also takes GPU Pods that name no profile; others only Pods naming them.
func TestOnlyTheDefaultProfileMatchesGPUPodsNamingNone(t *testing.T) {
	set := parse(t, "defaultProfile: a\nprofiles:\n- {name: a}\n- {name: b}\n")
	compiled, refused := CompileSet(set, opts())
	if len(refused) > 0 || len(compiled) != 2 {
		t.Fatalf("compiled %d, refused %v", len(compiled), refused)
	}
	for _, c := range compiled {
		last := c.Policy.Spec.MatchConditions[len(c.Policy.Spec.MatchConditions)-1].Expression
		gpu := strings.Contains(last, `"nvidia.com/gpu"`)
		if isDefault := c.Policy.Name == Name(DefaultInstance, "a"); gpu != isDefault {
			t.Errorf("%s: takes GPU Pods naming no profile: %v, want %v\n%s", c.Policy.Name, gpu, isDefault, last)
		}
	}
}

// The enforce list decides, at compile time, whether a different value of the Pod is replaced.
func TestEnforcedSettingsReplaceThePodsValue(t *testing.T) {
	compile := func(enforce string) string {
		set := parse(t, "profiles:\n- {name: p, pod: {runtimeClassName: nvidia}, container: {env: [{name: A, value: \"1\"}]}"+enforce+"}\n")
		p, _ := set.Get("p")
		c, err := Compile(p, opts())
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, m := range c.Policy.Spec.Mutations {
			all = append(all, m.JSONPatch.Expression)
		}
		return strings.Join(all, "\n")
	}
	free, enforced := compile(""), compile(", enforce: [runtimeClassName, env:A]")
	if strings.Contains(free, `op: "replace", path: cc`) {
		t.Error("env replaced without enforce")
	}
	if !strings.Contains(enforced, `op: "replace", path: "/spec/containers/" + string(ci) + "/env/"`) {
		t.Error("enforced env is never replaced")
	}
	free, enforced = free[strings.Index(free, "\n")+1:], enforced[strings.Index(enforced, "\n")+1:] // after the stamp
	have := `(has(object.spec.runtimeClassName) ? object.spec.runtimeClassName : "")`
	if !strings.HasPrefix(free, "(("+have+` != "nvidia" && (`+have+` == "")) ?`) {
		t.Errorf("runtimeClassName set over the Pod's own without enforce:\n%s", free)
	}
	if !strings.HasPrefix(enforced, "("+have+` != "nvidia" ?`) {
		t.Errorf("enforced runtimeClassName does not replace the Pod's own:\n%s", enforced)
	}
}

func TestNamespaceSelectorFollowsTheModeAndExcludesSystemNamespaces(t *testing.T) {
	custom := metav1.LabelSelector{MatchLabels: map[string]string{"team": "ml"}}
	cases := []struct {
		mode  string
		first string // the first requirement, before the exclusion
	}{
		{ModeOptIn, "ai.example.com/inject in (1,ENABLED,Enabled,ON,On,TRUE,True,YES,Yes,enabled,on,true,yes)"},
		{ModeOptOut, "ai.example.com/inject notin (0,DISABLED,Disabled,FALSE,False,NO,No,OFF,Off,disabled,false,no,off)"},
		{ModeAll, ""},
		{ModeCustom, "team=ml"},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			sel, err := metav1.LabelSelectorAsSelector(ptrTo(NamespaceSelector(tc.mode, custom, profile.DefaultDomain, "ai-webhook")))
			if err != nil {
				t.Fatal(err)
			}
			want := "kubernetes.io/metadata.name notin (ai-webhook,kube-node-lease,kube-public,kube-system)"
			switch {
			case tc.mode == ModeCustom: // matchLabels print after the expressions
				want += "," + tc.first
			case tc.first != "":
				want = tc.first + "," + want
			}
			if sel.String() != want {
				t.Errorf("got  %s\nwant %s", sel, want)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// A profile whose CEL would not fit in an object the API server stores is refused, not
// truncated: here 600 env vars.
func TestAPolicyTooLargeToStoreIsRefused(t *testing.T) {
	var env []string
	for i := range 600 {
		env = append(env, fmt.Sprintf("{name: V%d, value: x}", i))
	}
	set := parse(t, "profiles:\n- {name: p, container: {env: ["+strings.Join(env, ", ")+"]}}\n")
	p, _ := set.Get("p")
	_, err := Compile(p, opts())
	if err == nil || !strings.Contains(err.Error(), "over the 1048576 an object may take") {
		t.Fatalf("got %v, want a refusal for size", err)
	}
}

// The refusals policy denies (not warns) what inject.choose refuses, naming the known profiles;
// what it decides is proven on a real API server (TestPolicyBackendStoresTheSamePodsAsTheWebhook).
func TestRefusalsDenyWhatTheWebhookRefuses(t *testing.T) {
	set := parse(t, "profiles:\n- {name: a}\n- {name: b}\n")
	vap, bind := Refusals(set, opts())
	if len(vap.Spec.Validations) != 4 {
		t.Fatalf("%d validations, want unreadable annotation, unreadable label, disagreement, unknown profile", len(vap.Spec.Validations))
	}
	if !strings.Contains(vap.Spec.Validations[3].MessageExpression, "known profiles: a, b") {
		t.Errorf("unknown-profile message %s does not list the profiles", vap.Spec.Validations[3].MessageExpression)
	}
	if !slices.Equal(bind.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) || bind.Spec.PolicyName != vap.Name {
		t.Errorf("binding %+v", bind.Spec)
	}
}
