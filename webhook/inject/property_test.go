package inject

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// randomPod builds one of many Pod shapes: containers with and without resources, env,
// mounts, init containers, sidecars, existing tolerations, selectors, affinity and volumes.
func randomPod(r *rand.Rand, profileName string) *corev1.Pod {
	pod := newPod(withProfile(profileName))
	pod.Spec.Containers = nil
	names := []string{"pytorch", "trainer", "notebook", "server", "worker", "logs"}
	n := 1 + r.IntN(4)
	for i := 0; i < n; i++ {
		c := corev1.Container{Name: fmt.Sprintf("%s-%d", names[r.IntN(len(names))], i), Image: "img"}
		if i == 0 && r.IntN(2) == 0 {
			c.Name = names[r.IntN(3)]
		}
		switch r.IntN(4) {
		case 1:
			c.Resources.Limits = limits("cpu", fmt.Sprintf("%dm", 100+r.IntN(8000)), "memory", fmt.Sprintf("%dMi", 64+r.IntN(65536)))
		case 2:
			c.Resources.Limits = limits("nvidia.com/gpu", fmt.Sprint(1+r.IntN(8)))
		case 3:
			c.Resources.Requests = limits("cpu", "1")
		}
		for _, name := range []string{"NCCL_DEBUG", "HF_HOME", "A", "OMP_NUM_THREADS", "PYTHONUNBUFFERED", "NVIDIA_VISIBLE_DEVICES"} {
			if r.IntN(4) == 0 {
				c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: "x"})
			}
		}
		if r.IntN(4) == 0 {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: fmt.Sprintf("v%d", i), VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: fmt.Sprintf("v%d", i), MountPath: []string{"/dev/shm", "/models", "/data"}[r.IntN(3)]})
		}
		pod.Spec.Containers = append(pod.Spec.Containers, c)
	}
	if r.IntN(3) == 0 {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: "setup", Image: "img"})
	}
	if r.IntN(3) == 0 {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: "sidecar", Image: "img", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)})
	}
	if r.IntN(3) == 0 {
		pod.Spec.Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoExecute"}}
	}
	if r.IntN(4) == 0 {
		pod.Spec.NodeSelector = map[string]string{"nvidia.com/gpu.present": "false"}
	}
	if r.IntN(4) == 0 {
		pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: "Exists"}}}}}}}
	}
	if r.IntN(4) == 0 {
		pod.Spec.RuntimeClassName = ptr.To("runc")
	}
	return pod
}

func allSets(t *testing.T) []*profile.Set {
	examples, err := profile.Parse(profile.Examples, DefaultDomain)
	if err != nil {
		t.Fatal(err)
	}
	return []*profile.Set{examples, mustParse(t, testProfiles)}
}

// apiDefaults does what the API server does to a Pod before and after each webhook: fill in
// defaults. The second admission must see the first one's items as its own despite them.
func apiDefaults(pod *corev1.Pod) {
	if pod.Spec.SchedulerName == "" {
		pod.Spec.SchedulerName = corev1.DefaultSchedulerName
	}
	for i := range pod.Spec.Volumes {
		profile.DefaultVolume(&pod.Spec.Volumes[i])
	}
	for _, t := range allContainers(pod) {
		for i := range t.c.Env {
			profile.DefaultEnvVar(&t.c.Env[i])
		}
	}
}

// checkValid checks the invariants the API server's validation would refuse a Pod for and a
// mutation could break: unique names and mount paths, mounts of existing volumes.
func checkValid(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if volumes[v.Name] {
			t.Fatalf("duplicate volume %s", v.Name)
		}
		volumes[v.Name] = true
	}
	for _, tg := range allContainers(pod) {
		env, paths := map[string]bool{}, map[string]bool{}
		for _, e := range tg.c.Env {
			if env[e.Name] {
				t.Fatalf("%s: duplicate env %s", tg.where, e.Name)
			}
			env[e.Name] = true
		}
		for _, m := range tg.c.VolumeMounts {
			if paths[m.MountPath] || !volumes[m.Name] {
				t.Fatalf("%s: mount %s of %s is duplicate or of a missing volume", tg.where, m.MountPath, m.Name)
			}
			paths[m.MountPath] = true
		}
		for r, q := range tg.c.Resources.Requests {
			if l, ok := tg.c.Resources.Limits[r]; ok && strings.Contains(string(r), "/") && l.Cmp(q) != 0 {
				t.Fatalf("%s: extended resource %s request %s != limit %s", tg.where, r, q.String(), l.String())
			}
		}
	}
}

// TestIdempotence: mutate, apply, let the API server default, mutate again: an empty patch,
// the same skipped items as the first time, and a valid Pod, for every profile over many
// Pod shapes.
func TestIdempotence(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, set := range allSets(t) {
		for _, name := range set.Names() {
			for i := 0; i < 200; i++ {
				pod := randomPod(r, name)
				apiDefaults(pod)
				first, once, err := mutate(t, set, pod)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				checkValid(t, once)
				apiDefaults(once)
				res, _, err := mutate(t, set, once)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Patch) != 0 {
					b, _ := json.Marshal(res.Patch)
					t.Fatalf("profile %s: second admission patched again: %s\npod: %+v", name, b, once.Spec)
				}
				if a, b := len(first.Skipped()), len(res.Skipped()); a != b {
					t.Fatalf("profile %s: %d items skipped the first time, %d the second: %+v", name, a, b, res.Skipped())
				}
			}
		}
	}
}

// TestReinvocationReachesNewContainers: another webhook adds a container after us; when we are
// called again only that container gets the profile, and nothing is duplicated.
func TestReinvocationReachesNewContainers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	set := mustParse(t, testProfiles)
	for i := 0; i < 100; i++ {
		_, once, err := mutate(t, set, randomPod(r, "train"))
		if err != nil {
			t.Fatal(err)
		}
		once.Spec.Containers = append(once.Spec.Containers, corev1.Container{Name: "added-later", Image: "img"})
		res, twice, err := mutate(t, set, once)
		if err != nil {
			t.Fatal(err)
		}
		last := len(twice.Spec.Containers) - 1
		for _, op := range res.Patch {
			// The shm volume may appear now: the first call adds it only when some container
			// needed the mount, and the new container may be the first that does.
			if !hasPrefix(op.Path, fmt.Sprintf("/spec/containers/%d/", last)) && !hasPrefix(op.Path, "/spec/volumes") {
				t.Fatalf("reinvocation touched more than the new container: %+v", op)
			}
		}
		added := &twice.Spec.Containers[last]
		if envValue(added, "NCCL_DEBUG") != "WARN" {
			t.Fatalf("new container did not get the profile: %+v", added.Env)
		}
		for _, c := range twice.Spec.Containers {
			for _, e := range c.Env {
				if countEnv(&c, e.Name) != 1 {
					t.Fatalf("duplicate env %s in %s", e.Name, c.Name)
				}
			}
		}
		if again, _, _ := mutate(t, set, twice); len(again.Patch) != 0 {
			t.Fatalf("third call patched: %+v", again.Patch)
		}
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
