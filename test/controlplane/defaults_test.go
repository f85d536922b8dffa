package controlplane

import (
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// profile.DefaultPod is our one copy of the API server's defaults for what the injector reads;
// the profiles hold their values with those defaults applied. Both must agree with a real API
// server, or a reinvoked webhook takes its own earlier volume or env var for the user's. A Pod
// carrying DefaultingCorpus and every shipped profile's volumes, env vars and limits, written
// without defaults, is dry-run-created with no webhook in its path; what comes back must be
// DefaultPod of what was sent, and each profile's items must equal the loaded profile's. When a
// Kubernetes upgrade changes a default, this test names the field. Ephemeral containers cannot
// be created with a Pod; DefaultPod treats their env like other containers'.
func TestAPIServerDefaultsMatchDefaultPodAndLoadedProfiles(t *testing.T) {
	requireControlPlane(t)
	ns := newNamespace(t, nil) // no webhook selects it: defaulting only

	var raw profile.File // the shipped file as written: no defaults applied
	if err := yaml.UnmarshalStrict(profile.Examples, &raw); err != nil {
		t.Fatalf("read the shipped examples: %v", err)
	}
	volumes, env := profile.DefaultingCorpus()
	// One more profile carries the corpus, so the load-time defaults meet every source too (a
	// volume without a source is refused in a profile: it stays in the Pod only).
	corpus := profile.Profile{Name: "defaulting-corpus", Pod: profile.PodSettings{Volumes: clone(volumes[1:])},
		Container: profile.ContainerSettings{Env: clone(env)}}
	if volumes[0].Name != "no-source" {
		t.Fatalf("DefaultingCorpus starts with %q, want the volume without a source", volumes[0].Name)
	}
	raw.Profiles = append(raw.Profiles, corpus)
	file, err := yaml.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := profile.Parse(file, domain)
	if err != nil {
		t.Fatalf("load the shipped examples and the corpus profile: %v", err)
	}
	raw.Profiles = raw.Profiles[:len(raw.Profiles)-1] // its volumes are in the Pod already
	container := func(name string, env []corev1.EnvVar, limits corev1.ResourceList) corev1.Container {
		return corev1.Container{Name: name, Image: "registry.example/app:1", Env: env,
			Resources: corev1.ResourceRequirements{Limits: limits}}
	}
	odd := corev1.ResourceList{ // below a thousandth rounds up; a limit alone gets a request
		corev1.ResourceCPU:    resource.MustParse("1.0001"),
		corev1.ResourceMemory: resource.MustParse("1000000000.5"),
		"nvidia.com/gpu":      resource.MustParse("1"),
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
		Spec: corev1.PodSpec{
			// A projected token needs one; the ServiceAccount admission plugin (off here) sets it.
			ServiceAccountName: "default",
			Volumes:            volumes,
			InitContainers: []corev1.Container{
				container("init", clone(env), corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0.0005")}),
				func() corev1.Container {
					c := container("sidecar", clone(env), corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1.5Gi")})
					c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
					return c
				}(),
			},
			Containers: []corev1.Container{container("main", clone(env), odd)},
		},
	}
	pod.Spec.Containers = append(pod.Spec.Containers, container("p-"+corpus.Name, clone(env), nil))
	for _, p := range raw.Profiles {
		pod.Spec.Volumes = append(pod.Spec.Volumes, clone(p.Pod.Volumes)...)
		c := container("p-"+p.Name, clone(p.Container.Env), p.Container.Limits.DeepCopy())
		c.VolumeMounts = clone(p.Container.VolumeMounts)
		pod.Spec.Containers = append(pod.Spec.Containers, c)
	}

	sent := pod.DeepCopy()
	stored, err := createPod(ns, pod, true)
	if err != nil {
		t.Fatalf("dry-run create of the defaulting corpus: %v", err)
	}
	if v, ok := stored.Annotations[injectedKey]; ok {
		t.Fatalf("a webhook mutated the Pod (%s=%s): this test must see defaulting only", injectedKey, v)
	}

	want := sent.DeepCopy()
	profile.DefaultPod(want)
	t.Run("DefaultPod equals the API server's defaults", func(t *testing.T) {
		sameJSON(t, "schedulerName", want.Spec.SchedulerName, stored.Spec.SchedulerName)
		storedVolumes := byName(stored.Spec.Volumes, func(v corev1.Volume) string { return v.Name })
		for _, v := range want.Spec.Volumes {
			sameJSON(t, "volume "+v.Name, v, storedVolumes[v.Name])
		}
		storedContainers := byName(append(clone(stored.Spec.InitContainers), stored.Spec.Containers...),
			func(c corev1.Container) string { return c.Name })
		for _, c := range append(clone(want.Spec.InitContainers), want.Spec.Containers...) {
			got := storedContainers[c.Name]
			sameJSON(t, "container "+c.Name+" env", c.Env, got.Env)
			sameJSON(t, "container "+c.Name+" resources", c.Resources, got.Resources)
			sameJSON(t, "container "+c.Name+" volumeMounts", c.VolumeMounts, got.VolumeMounts)
		}
	})

	t.Run("every loaded profile holds what the API server stores", func(t *testing.T) {
		storedVolumes := byName(stored.Spec.Volumes, func(v corev1.Volume) string { return v.Name })
		storedContainers := byName(stored.Spec.Containers, func(c corev1.Container) string { return c.Name })
		for _, name := range loaded.Names() {
			p, _ := loaded.Get(name)
			for _, v := range p.Pod.Volumes {
				sameJSON(t, fmt.Sprintf("profile %s volume %s", name, v.Name), v, storedVolumes[v.Name])
			}
			got := storedContainers["p-"+name]
			sameJSON(t, "profile "+name+" env", p.Container.Env, got.Env)
			sameJSON(t, "profile "+name+" volumeMounts", p.Container.VolumeMounts, got.VolumeMounts)
			sameJSON(t, "profile "+name+" limits", p.Container.Limits, got.Resources.Limits)
		}
	})
}

// sameJSON compares want and got as the API serializes them (quantities canonical) and shows a
// line diff of the two when they differ.
func sameJSON(t *testing.T, what string, want, got any) {
	t.Helper()
	w, err1 := json.Marshal(want)
	g, err2 := json.Marshal(got)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: marshal: %v %v", what, err1, err2)
	}
	if string(w) != string(g) {
		t.Errorf("%s: the API server's (+) differs from ours (-):\n%s", what, diff.Diff(want, got))
	}
}

func byName[T any](items []T, name func(T) string) map[string]T {
	m := make(map[string]T, len(items))
	for _, it := range items {
		m[name(it)] = it
	}
	return m
}

// runContainers are a Pod's init and app containers, in order.
func runContainers(spec *corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(spec.InitContainers), spec.Containers...)
}

// containersByName are runContainers by name.
func containersByName(spec *corev1.PodSpec) map[string]corev1.Container {
	return byName(runContainers(spec), func(c corev1.Container) string { return c.Name })
}

// storedWithSent yields each run container of stored with the container of the same name
// in sent (the zero Container when sent had none).
func storedWithSent(sent, stored *corev1.Pod) iter.Seq2[corev1.Container, corev1.Container] {
	mine := containersByName(&sent.Spec)
	return func(yield func(corev1.Container, corev1.Container) bool) {
		for _, c := range runContainers(&stored.Spec) {
			if !yield(c, mine[c.Name]) {
				return
			}
		}
	}
}

// clone deep-copies a slice of API values through JSON, so a Pod never shares them.
func clone[T any](items []T) []T {
	if items == nil {
		return nil
	}
	data, err := json.Marshal(items)
	if err != nil {
		panic(err)
	}
	var out []T
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return out
}
