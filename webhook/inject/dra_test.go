package inject

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func claimNames(c *corev1.Container) []string {
	var out []string
	for _, cl := range c.Resources.Claims {
		out = append(out, cl.Name)
	}
	return out
}

func withPodClaim(name, template string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.ResourceClaims = append(p.Spec.ResourceClaims, corev1.PodResourceClaim{Name: name, ResourceClaimTemplateName: ptr.To(template)})
	}
}

// TestDRAClaimsAreAddedUnlessThePodRequestsDevicesItself: the profile's claim goes into
// spec.resourceClaims and every targeted container; a Pod asking for devices itself keeps its
// own request; a claimed container is a GPU container for /dev/shm, OMP and GPU hiding.
func TestDRAClaimsAreAddedUnlessThePodRequestsDevicesItself(t *testing.T) {
	hidden := func(c *corev1.Container) bool { return envValue(c, "NVIDIA_VISIBLE_DEVICES") == "void" }
	noClaims := func(t *testing.T, p *corev1.Pod) {
		t.Helper()
		if len(p.Spec.ResourceClaims) > 1 || len(claimNames(&p.Spec.Containers[0])) > 0 && p.Spec.ResourceClaims[0].Name != "mine" {
			t.Fatalf("claims added: %+v %v", p.Spec.ResourceClaims, claimNames(&p.Spec.Containers[0]))
		}
	}
	runRules(t, []ruleCase{
		{"claims added to the Pod and each targeted container", "dra",
			newPod(withSidecar("proxy"), withInit(corev1.Container{Name: "fetch", Image: "img"})),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if len(p.Spec.ResourceClaims) != 1 || ptr.Deref(p.Spec.ResourceClaims[0].ResourceClaimTemplateName, "") != "single-gpu" {
					t.Fatalf("spec.resourceClaims: %+v", p.Spec.ResourceClaims)
				}
				if got := claimNames(&p.Spec.Containers[0]); len(got) != 1 || got[0] != "gpu" {
					t.Fatalf("main claims %v", got)
				}
				if got := claimNames(&p.Spec.InitContainers[0]); len(got) != 1 {
					t.Fatalf("targeted sidecar claims %v", got)
				}
				if got := claimNames(&p.Spec.InitContainers[1]); len(got) != 0 {
					t.Fatalf("an init container the profile does not reach got %v", got)
				}
				if hidden(&p.Spec.Containers[0]) || !hidden(&p.Spec.InitContainers[1]) {
					t.Fatal("the claimed container is hidden, or the unclaimed init container is not")
				}
				if volumeNamed(p, "dshm") == nil {
					t.Fatal("no /dev/shm for the claimed container")
				}
				wantItem(t, res, "resourceClaims", "gpu", Applied)
			}},
		{"a container with resources but no claims gets its claim appended", "dra",
			newPod(onMain(func(c *corev1.Container) { c.Resources.Limits = limits("cpu", "4") })),
			func(t *testing.T, _ *Result, p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				if len(claimNames(c)) != 1 || envValue(c, "OMP_NUM_THREADS") != "4" {
					t.Fatalf("claims %v, env %v", claimNames(c), c.Env)
				}
			}},
		{"a Pod given a claim requests a GPU for runtimeClassWhen gpu", "dra-runtime-when-gpu", newPod(), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if len(p.Spec.ResourceClaims) != 1 || ptr.Deref(p.Spec.RuntimeClassName, "") != "nvidia" {
				t.Fatalf("claims %+v, runtimeClassName %v", p.Spec.ResourceClaims, p.Spec.RuntimeClassName)
			}
		}},
		{"a GPU limit wins: no claim", "dra", newPod(withGPU("nvidia.com/gpu", "1")), func(t *testing.T, res *Result, p *corev1.Pod) {
			noClaims(t, p)
			if it := wantItem(t, res, "resourceClaims", "gpu", Skipped); it.Reason != "the pod requests a GPU through limits" {
				t.Fatalf("reason %q", it.Reason)
			}
		}},
		{"the Pod's own claim wins: no second claim", "dra",
			newPod(withPodClaim("mine", "big-gpu"), onMain(func(c *corev1.Container) {
				c.Resources.Claims = []corev1.ResourceClaim{{Name: "mine"}}
			})),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				noClaims(t, p)
				wantItem(t, res, "resourceClaims", "gpu", Skipped)
				if hidden(&p.Spec.Containers[0]) {
					t.Fatal("a container claiming its own device is hidden from it")
				}
			}},
		{"an own claim of the profile's name but another template wins", "dra",
			newPod(withPodClaim("gpu", "big-gpu")),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if len(p.Spec.ResourceClaims) != 1 || *p.Spec.ResourceClaims[0].ResourceClaimTemplateName != "big-gpu" || len(claimNames(&p.Spec.Containers[0])) != 0 {
					t.Fatalf("%+v", p.Spec)
				}
				wantItem(t, res, "resourceClaims", "gpu", Skipped)
			}},
	})
}

// TestDRATemplateMustExistInThePodsNamespace: with cluster facts, a template the Pod's
// namespace lacks adds nothing (the Pod would never schedule), with a missing row.
func TestDRATemplateMustExistInThePodsNamespace(t *testing.T) {
	set := ruleSet(t)
	for _, tc := range []struct {
		name      string
		namespace string
		facts     Facts
		wantClaim bool
	}{
		{"facts unknown: added", "ns", Facts{}, true},
		{"in the namespace: added", "ns", Facts{Known: true, ResourceClaimTemplates: map[string]bool{"ns/single-gpu": true}}, true},
		{"only in another namespace: missing", "ns", Facts{Known: true, ResourceClaimTemplates: map[string]bool{"other/single-gpu": true}}, false},
		{"nowhere: missing", "ns", Facts{Known: true}, false},
		{"a Pod of no namespace (offline): not checked, added", "", Facts{Known: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod(withProfile("dra"))
			pod.Namespace = tc.namespace
			res, err := MutateWith(pod, set, testKeys, tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(pod.Spec.ResourceClaims) == 1 && len(pod.Spec.Containers[0].Resources.Claims) == 1; got != tc.wantClaim {
				t.Fatalf("claimed %v, want %v: %+v", got, tc.wantClaim, pod.Spec)
			}
			if tc.wantClaim {
				return
			}
			wantItem(t, res, "resourceClaims", "gpu", Missing)
			if len(res.Missing) != 1 || res.Missing[0] != (Object{Kind: KindResourceClaimTemplate, Name: "single-gpu"}) {
				t.Fatalf("missing %+v", res.Missing)
			}
			if w := res.Warnings(); len(w) != 1 || w[0] != `dra: did not set pod resourceClaims gpu (ResourceClaimTemplate single-gpu not found in the namespace)` {
				t.Fatalf("warnings %q", w)
			}
			if !hidden(pod) {
				t.Fatal("a Pod left without its claim still counts as a GPU Pod")
			}
		})
	}
}

func hidden(p *corev1.Pod) bool {
	return envValue(&p.Spec.Containers[0], "NVIDIA_VISIBLE_DEVICES") == "void"
}
