package inject

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// randomPod builds one of many Pod shapes: containers with and without resources (GPU, MIG,
// zero GPU, memory "0", odd units, pod-level resources), env with duplicate names and envFrom,
// mounts (trailing slashes, the profiles' own paths and volume names used for the Pod's own
// data), init containers, sidecars, tolerations, selectors, affinity, runtime classes with
// overhead, priorities, hostIPC and hostNetwork, DRA claims of the Pod's own.
func randomPod(r *rand.Rand, profileName string) *corev1.Pod {
	pod := newPod(withProfile(profileName))
	pod.Spec.Containers = nil
	names := []string{"pytorch", "trainer", "notebook", "server", "worker", "logs", "main"}
	n := 1 + r.IntN(4)
	for i := 0; i < n; i++ {
		c := corev1.Container{Name: fmt.Sprintf("%s-%d", names[r.IntN(len(names))], i), Image: "img"}
		if i == 0 && r.IntN(2) == 0 {
			c.Name = names[r.IntN(3)]
		}
		switch r.IntN(8) {
		case 1:
			c.Resources.Limits = limits("cpu", fmt.Sprintf("%dm", 100+r.IntN(8000)), "memory", fmt.Sprintf("%dMi", 64+r.IntN(65536)))
		case 2:
			c.Resources.Limits = limits("nvidia.com/gpu", fmt.Sprint(1+r.IntN(8)))
		case 3:
			c.Resources.Requests = limits("cpu", "1", "memory", []string{"8Gi", "1G", "500M"}[r.IntN(3)])
		case 4:
			c.Resources.Limits = limits("nvidia.com/mig-1g.10gb", "1")
		case 5:
			c.Resources.Limits = limits("nvidia.com/gpu", "0", "cpu", "0", "memory", "0")
		case 6:
			c.Resources.Limits = limits("memory", "1", "cpu", "1m")
		case 7: // a DRA claim of its own, sometimes named and templated like a profile's
			name, tmpl := []string{"gpu", "mine"}[r.IntN(2)], []string{"single-gpu", "big-gpu"}[r.IntN(2)]
			if !slices.ContainsFunc(pod.Spec.ResourceClaims, func(pc corev1.PodResourceClaim) bool { return pc.Name == name }) {
				pod.Spec.ResourceClaims = append(pod.Spec.ResourceClaims, corev1.PodResourceClaim{Name: name, ResourceClaimTemplateName: ptr.To(tmpl)})
			}
			c.Resources.Claims = []corev1.ResourceClaim{{Name: name}}
		}
		for _, name := range []string{"NCCL_DEBUG", "HF_HOME", "A", "OMP_NUM_THREADS", "PYTHONUNBUFFERED", "NVIDIA_VISIBLE_DEVICES", "NCCL_SOCKET_IFNAME"} {
			switch r.IntN(8) {
			case 0:
				c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: "x"})
			case 1: // duplicate names: the runtime takes the last
				c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: "x"}, corev1.EnvVar{Name: name, Value: []string{"WARN", "1", "y"}[r.IntN(3)]})
			}
		}
		if r.IntN(4) == 0 {
			c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{Prefix: []string{"", "NCCL_", "APP_"}[r.IntN(3)],
				ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}})
		}
		if r.IntN(3) == 0 {
			// The Pod's own volume, sometimes under a name a profile uses, mounted at a path a
			// profile uses, with or without a trailing slash.
			name := []string{fmt.Sprintf("v%d", i), "dshm", "model-cache", "models", "hf-cache"}[r.IntN(5)]
			if volumeNamed(pod, name) == nil {
				v := corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
				if r.IntN(2) == 0 {
					v.EmptyDir.Medium = corev1.StorageMediumMemory
				}
				pod.Spec.Volumes = append(pod.Spec.Volumes, v)
			}
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name,
				MountPath: []string{"/dev/shm", "/models", "/data", "/models/", "/dev/shm/", "/cache", "/scratch"}[r.IntN(7)]})
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
	switch r.IntN(4) {
	case 0:
		pod.Spec.RuntimeClassName = ptr.To("runc")
	case 1: // a class with overhead, as the RuntimeClass admission plugin leaves it
		pod.Spec.RuntimeClassName = ptr.To("kata")
		pod.Spec.Overhead = limits("cpu", "250m", "memory", "120Mi")
	}
	if r.IntN(4) == 0 {
		pod.Spec.PriorityClassName, pod.Spec.Priority = "low", ptr.To[int32](10)
	}
	if r.IntN(4) == 0 {
		pod.Spec.Resources = &corev1.ResourceRequirements{Limits: limits("cpu", fmt.Sprint(1+r.IntN(16)), "memory", fmt.Sprintf("%dGi", 1+r.IntN(64)))}
	}
	pod.Spec.HostIPC = r.IntN(5) == 0
	pod.Spec.HostNetwork = r.IntN(5) == 0
	return pod
}

// enforceAll sets everything a profile can set and enforces all of it.
const enforceAll = `
profiles:
- name: enforce-all
  pod:
    labels: {team.example.com/workload: training}
    annotations: {example.com/note: "a/b"}
    runtimeClassName: nvidia
    schedulerName: volcano
    priorityClassName: batch-high
    nodeSelector: {nvidia.com/gpu.present: "true"}
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    volumes: [{name: model-cache, emptyDir: {sizeLimit: 100Gi}}]
  container:
    limits: {nvidia.com/gpu: "1", memory: 4Gi}
    env: [{name: NCCL_DEBUG, value: WARN}, {name: NCCL_SOCKET_IFNAME, value: eth0}]
    volumeMounts: [{name: model-cache, mountPath: /models}]
  derived:
    shm: {fraction: 0.5, default: 8Gi}
    ompNumThreadsFromCPU: true
    hideGPUsFromNonGPUContainers: true
  enforce: [runtimeClassName, schedulerName, priorityClassName, labels, annotations, nodeSelector, tolerations, volumes, limits, env, volumeMounts]
`

func allSets(t *testing.T) []*profile.Set {
	examples, err := profile.Parse(profile.Examples, profile.DefaultDomain)
	if err != nil {
		t.Fatal(err)
	}
	return []*profile.Set{examples, mustParse(t, testProfiles), mustParse(t, ruleProfiles), mustParse(t, enforceAll)}
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

// checkValid checks, offline, what the API server's validation and admission plugins would
// refuse the mutated Pod for and a mutation could break: unique volume names, mounts of existing
// volumes at distinct (cleaned) paths, no env name the mutation duplicated, requests within
// limits (equal for extended resources), no overhead left from a runtime class the mutation
// replaced, and no priority left from a replaced priority class.
func checkValid(t *testing.T, before, after *corev1.Pod) {
	t.Helper()
	for _, tg := range allContainers(after) { // the API refuses a claim the Pod does not list
		for _, cl := range tg.c.Resources.Claims {
			if !slices.ContainsFunc(after.Spec.ResourceClaims, func(pc corev1.PodResourceClaim) bool { return pc.Name == cl.Name }) {
				t.Fatalf("%s: claim %s is not in spec.resourceClaims", tg.where, cl.Name)
			}
		}
	}
	volumes := map[string]bool{}
	for _, v := range after.Spec.Volumes {
		if volumes[v.Name] {
			t.Fatalf("duplicate volume %s", v.Name)
		}
		volumes[v.Name] = true
	}
	beforeEnv := map[string]int{}
	for _, tg := range allContainers(before) {
		for _, e := range tg.c.Env {
			beforeEnv[tg.where+"/"+e.Name]++
		}
	}
	for _, tg := range allContainers(after) {
		env, paths := map[string]int{}, map[string]bool{}
		for _, e := range tg.c.Env {
			if env[e.Name]++; env[e.Name] > max(beforeEnv[tg.where+"/"+e.Name], 1) {
				t.Fatalf("%s: env %s duplicated by the mutation", tg.where, e.Name)
			}
		}
		for _, m := range tg.c.VolumeMounts {
			if p := path.Clean(m.MountPath); paths[p] || !volumes[m.Name] {
				t.Fatalf("%s: mount %s of %s is duplicate or of a missing volume", tg.where, m.MountPath, m.Name)
			}
			paths[path.Clean(m.MountPath)] = true
		}
		for r, q := range tg.c.Resources.Requests {
			l, ok := tg.c.Resources.Limits[r]
			if ok && (l.Cmp(q) < 0 || strings.Contains(string(r), "/") && l.Cmp(q) != 0) {
				t.Fatalf("%s: %s request %s and limit %s disagree", tg.where, r, q.String(), l.String())
			}
		}
	}
	if a, b := podLevelProblem(before), podLevelProblem(after); a == "" && b != "" {
		t.Fatal(b)
	}
	if ptr.Deref(before.Spec.RuntimeClassName, "") != ptr.Deref(after.Spec.RuntimeClassName, "") && len(after.Spec.Overhead) > 0 {
		t.Fatalf("runtime class changed to %s but the old overhead stayed", *after.Spec.RuntimeClassName)
	}
	if before.Spec.PriorityClassName != after.Spec.PriorityClassName && after.Spec.Priority != nil {
		t.Fatal("priority class changed but the resolved priority stayed")
	}
}

// podLevelProblem is what the API server refuses in a Pod with pod-level resources: a container
// limit above the Pod's, or app container requests summing above the Pod's request (its limit
// when it sets none).
func podLevelProblem(pod *corev1.Pod) string {
	pr := pod.Spec.Resources
	if pr == nil {
		return ""
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		podReq, hasReq := pr.Requests[r]
		if !hasReq {
			podReq, hasReq = pr.Limits[r]
		}
		var sum resource.Quantity
		for _, c := range pod.Spec.Containers {
			if l, ok := c.Resources.Limits[r]; ok && podLimitBelow(pr, r, l) {
				return fmt.Sprintf("container %s %s limit %s above the pod-level limit", c.Name, r, l.String())
			}
			if q, ok := c.Resources.Requests[r]; ok {
				sum.Add(q)
			} else if l, ok := c.Resources.Limits[r]; ok { // the API defaults the request to the limit
				sum.Add(l)
			}
		}
		if hasReq && sum.Cmp(podReq) > 0 {
			return fmt.Sprintf("%s requests %s above the pod-level %s", r, sum.String(), podReq.String())
		}
	}
	return ""
}

func podLimitBelow(pr *corev1.ResourceRequirements, r corev1.ResourceName, l resource.Quantity) bool {
	pl, ok := pr.Limits[r]
	return ok && l.Cmp(pl) > 0
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
				checkValid(t, pod, once)
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
		for i := range once.Spec.Containers {
			for _, e := range once.Spec.Containers[i].Env {
				if countEnv(&twice.Spec.Containers[i], e.Name) != countEnv(&once.Spec.Containers[i], e.Name) {
					t.Fatalf("env %s duplicated in %s", e.Name, once.Spec.Containers[i].Name)
				}
			}
		}
		checkValid(t, once, twice)
		if again, _, _ := mutate(t, set, twice); len(again.Patch) != 0 {
			t.Fatalf("third call patched: %+v", again.Patch)
		}
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
