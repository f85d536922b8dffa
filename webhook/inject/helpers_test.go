package inject

import (
	"encoding/json"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

var testKeys = profile.KeysFor(profile.DefaultDomain)

func mustParse(t testing.TB, yml string) *profile.Set {
	t.Helper()
	set, err := profile.Parse([]byte(yml), profile.DefaultDomain)
	if err != nil {
		t.Fatalf("parse profiles: %v", err)
	}
	return set
}

// podOpt shapes a test Pod.
type podOpt func(*corev1.Pod)

func newPod(opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "img"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withProfile(name string) podOpt {
	return func(p *corev1.Pod) { setMap(&p.Labels, testKeys.Profile, name) }
}

func withAnnotation(k, v string) podOpt { return func(p *corev1.Pod) { setMap(&p.Annotations, k, v) } }
func withLabel(k, v string) podOpt      { return func(p *corev1.Pod) { setMap(&p.Labels, k, v) } }

func setMap(m *map[string]string, k, v string) {
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = v
}

func withContainer(c corev1.Container) podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, c) }
}

func withInit(c corev1.Container) podOpt {
	return func(p *corev1.Pod) { p.Spec.InitContainers = append(p.Spec.InitContainers, c) }
}

func withSidecar(name string) podOpt {
	return withInit(corev1.Container{Name: name, Image: "img", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)})
}

// onMain edits the first app container.
func onMain(f func(c *corev1.Container)) podOpt {
	return func(p *corev1.Pod) { f(&p.Spec.Containers[0]) }
}

func limits(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

// mutate runs Mutate on a copy of pod and checks the patch against the in-memory result:
// applying the returned JSON patch to the original JSON must give exactly the mutated Pod.
func mutate(t testing.TB, set *profile.Set, pod *corev1.Pod) (*Result, *corev1.Pod, error) {
	t.Helper()
	original, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	mutated := pod.DeepCopy()
	res, err := Mutate(mutated, set, testKeys)
	if err != nil {
		return res, nil, err
	}
	patched := applyPatch(t, original, res)
	if !equality.Semantic.DeepEqual(patched, mutated) {
		a, _ := json.Marshal(patched)
		b, _ := json.Marshal(mutated)
		t.Fatalf("the patch does not produce the decided Pod\npatched: %s\ndecided: %s", a, b)
	}
	return res, patched, nil
}

func applyPatch(t testing.TB, original []byte, res *Result) *corev1.Pod {
	t.Helper()
	out := original
	if len(res.Patch) > 0 {
		b, err := json.Marshal(res.Patch)
		if err != nil {
			t.Fatal(err)
		}
		p, err := jsonpatchapply.DecodePatch(b)
		if err != nil {
			t.Fatalf("decode patch: %v", err)
		}
		if out, err = p.Apply(original); err != nil {
			t.Fatalf("apply patch %s: %v", b, err)
		}
	}
	var pod corev1.Pod
	if err := json.Unmarshal(out, &pod); err != nil {
		t.Fatalf("patched Pod does not decode: %v", err)
	}
	return &pod
}

func envOf(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func countEnv(c *corev1.Container, name string) int {
	n := 0
	for _, e := range c.Env {
		if e.Name == name {
			n++
		}
	}
	return n
}

func findItem(res *Result, field, key string) (Item, bool) {
	for _, it := range res.Items {
		if it.Field == field && it.Key == key {
			return it, true
		}
	}
	return Item{}, false
}
