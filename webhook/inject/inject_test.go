package inject

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

const testProfiles = `
defaultProfile: train
profiles:
- name: train
  containers: {select: all}
  pod:
    labels: {team.example.com/workload: training}
    annotations: {example.com/note: "a/b"}
    runtimeClassName: nvidia
    schedulerName: volcano
    nodeSelector: {nvidia.com/gpu.present: "true"}
    tolerations:
    - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
    affinity:
      required:
      - {key: gpu-type, operator: In, values: [a100, h100]}
      preferred:
      - weight: 10
        preference:
          matchExpressions: [{key: zone, operator: In, values: [z1]}]
    volumes:
    - name: models
      emptyDir: {}
  container:
    limits: {nvidia.com/gpu: "1"}
    env:
    - {name: NCCL_DEBUG, value: WARN}
    - {name: EMPTY, value: ""}
    volumeMounts:
    - {name: models, mountPath: /models}
  derived:
    shm: {fraction: 0.5, default: 1Gi}
    ompNumThreadsFromCPU: true
    hideGPUsFromNonGPUContainers: true
- name: enforcing
  pod:
    runtimeClassName: nvidia
    tolerations:
    - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
    nodeSelector: {pool: gpu}
  container:
    limits: {nvidia.com/gpu: "2"}
    env: [{name: NCCL_DEBUG, value: WARN}]
  enforce: [runtimeClassName, "env:NCCL_DEBUG", limits, nodeSelector, tolerations]
- name: named
  containers: {select: named, names: [worker]}
  container:
    env: [{name: ROLE, value: worker}]
- name: gpu-only
  containers: {select: gpu}
  container:
    env: [{name: HF_HOME, value: /cache}]
- name: with-init
  containers: {select: all, initContainers: true}
  container:
    env: [{name: X, value: "1"}]
- name: with-sidecars
  containers: {select: all, sidecars: true}
  container:
    env: [{name: X, value: "1"}]
- name: priority
  pod: {priorityClassName: batch-high}
- name: mounts
  container:
    volumeMounts: [{name: not-in-pod, mountPath: /data}]
- name: api-defaulted
  pod:
    schedulerName: kueue
    volumes:
    - {name: config, configMap: {name: train-config}}
    - {name: host, hostPath: {path: /mnt/data}}
    - name: info
      downwardAPI:
        items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
  container:
    env:
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    volumeMounts: [{name: config, mountPath: /config}, {name: host, mountPath: /data}]
`

func TestSelection(t *testing.T) {
	set := mustParse(t, testProfiles)
	gpu := onMain(func(c *corev1.Container) { c.Resources.Limits = limits("nvidia.com/gpu", "1") })
	cases := []struct {
		name        string
		pod         *corev1.Pod
		wantProfile string // "" means nothing applied
		wantReason  string
		wantRefusal string
	}{
		{name: "label opts in", pod: newPod(withProfile("named")), wantProfile: "named"},
		{name: "annotation opts in", pod: newPod(withAnnotation(testKeys.Profile, "named")), wantProfile: "named"},
		{name: "label and annotation agreeing", pod: newPod(withProfile("named"), withAnnotation(testKeys.Profile, "named")), wantProfile: "named"},
		{name: "label and annotation disagreeing are refused", pod: newPod(withProfile("named"), withAnnotation(testKeys.Profile, "train")), wantRefusal: "disagree"},
		{name: "opt-out wins over a profile", pod: newPod(withProfile("train"), withAnnotation(testKeys.Inject, "false")), wantReason: "opted out"},
		{name: "opt-out is case-insensitive", pod: newPod(gpu, withAnnotation(testKeys.Inject, "False")), wantReason: "opted out"},
		{name: "unknown profile is refused with the known names", pod: newPod(withProfile("nope")), wantRefusal: `unknown profile "nope" in ai.example.com/profile; known profiles: api-defaulted, enforcing, gpu-only, mounts, named, priority, train, with-init, with-sidecars`},
		{name: "default profile for a GPU pod", pod: newPod(gpu), wantProfile: "train"},
		{name: "default profile for a GPU request only", pod: newPod(onMain(func(c *corev1.Container) { c.Resources.Requests = limits("nvidia.com/gpu", "1") })), wantProfile: "train"},
		{name: "no default for a CPU pod", pod: newPod(), wantReason: "no profile requested"},
		{name: "mirror pods are never touched", pod: newPod(withProfile("train"), withAnnotation("kubernetes.io/config.mirror", "x")), wantReason: "mirror pod"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _, err := mutate(t, set, tc.pod)
			if tc.wantRefusal != "" {
				var r *RefusedError
				if !errors.As(err, &r) || !strings.Contains(r.Reason, tc.wantRefusal) {
					t.Fatalf("want refusal containing %q, got %v", tc.wantRefusal, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if res.Profile != nil {
				got = res.Profile.Name
			}
			if got != tc.wantProfile {
				t.Fatalf("profile: got %q, want %q (reason %q)", got, tc.wantProfile, res.Reason)
			}
			if tc.wantProfile == "" && (len(res.Patch) != 0 || !strings.Contains(res.Reason, tc.wantReason)) {
				t.Fatalf("want no patch and reason %q, got %d ops, reason %q", tc.wantReason, len(res.Patch), res.Reason)
			}
		})
	}
}

func TestDefaultProfileOff(t *testing.T) {
	set := mustParse(t, strings.Replace(testProfiles, "defaultProfile: train", "", 1))
	res, _, err := mutate(t, set, newPod(onMain(func(c *corev1.Container) { c.Resources.Limits = limits("nvidia.com/gpu", "1") })))
	if err != nil || res.Profile != nil {
		t.Fatalf("without defaultProfile a GPU pod must be left alone: %v %+v", err, res)
	}
}

func TestContainerTargets(t *testing.T) {
	set := mustParse(t, testProfiles)
	gpuContainer := corev1.Container{Name: "gpu", Image: "img", Resources: corev1.ResourceRequirements{Limits: limits("nvidia.com/gpu", "1")}}
	cases := []struct {
		name    string
		profile string
		pod     *corev1.Pod
		env     string
		reached []string // containers (app, then init) that get env
	}{
		{"all app containers by default, not init or sidecars", "with-init", newPod(withContainer(corev1.Container{Name: "b", Image: "i"}), withSidecar("side")), "X", []string{"main", "b"}},
		{"init containers when asked", "with-init", newPod(withInit(corev1.Container{Name: "setup", Image: "i"}), withSidecar("side")), "X", []string{"main", "setup"}},
		{"native sidecars when asked", "with-sidecars", newPod(withInit(corev1.Container{Name: "setup", Image: "i"}), withSidecar("side")), "X", []string{"main", "side"}},
		{"by name", "named", newPod(withContainer(corev1.Container{Name: "worker", Image: "i"})), "ROLE", []string{"worker"}},
		{"by name, none matching", "named", newPod(), "ROLE", nil},
		{"containers requesting the GPU", "gpu-only", newPod(withContainer(gpuContainer)), "HF_HOME", []string{"gpu"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := mutate(t, set, withProfileOn(tc.pod, tc.profile))
			if err != nil {
				t.Fatal(err)
			}
			var reached []string
			for _, c := range append(append([]corev1.Container{}, got.Spec.Containers...), got.Spec.InitContainers...) {
				if _, ok := envOf(&c, tc.env); ok {
					reached = append(reached, c.Name)
				}
			}
			if strings.Join(reached, ",") != strings.Join(tc.reached, ",") {
				t.Fatalf("reached %v, want %v", reached, tc.reached)
			}
		})
	}
}

func withProfileOn(p *corev1.Pod, name string) *corev1.Pod {
	withProfile(name)(p)
	return p
}

func TestFullProfileOnABarePod(t *testing.T) {
	set := mustParse(t, testProfiles)
	pod := newPod(withProfile("train"), onMain(func(c *corev1.Container) {
		c.Resources.Limits = limits("cpu", "2500m", "memory", "8Gi")
	}), withContainer(corev1.Container{Name: "sidecar", Image: "i", Resources: corev1.ResourceRequirements{Limits: limits("cpu", "500m")}}))
	res, got, err := mutate(t, set, pod)
	if err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	main := &s.Containers[0]
	checks := []struct {
		what string
		ok   bool
	}{
		{"stamp", got.Annotations[testKeys.Injected] == res.Profile.Stamp && strings.HasPrefix(res.Profile.Stamp, "train@")},
		{"label with a slash", got.Labels["team.example.com/workload"] == "training"},
		{"annotation", got.Annotations["example.com/note"] == "a/b"},
		{"runtimeClassName", ptr.Deref(s.RuntimeClassName, "") == "nvidia"},
		{"schedulerName", s.SchedulerName == "volcano"},
		{"nodeSelector", s.NodeSelector["nvidia.com/gpu.present"] == "true"},
		{"toleration", len(s.Tolerations) == 1 && s.Tolerations[0].Key == "nvidia.com/gpu"},
		{"required affinity", s.Affinity != nil && s.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Key == "gpu-type"},
		{"preferred affinity", len(s.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 1},
		{"volumes: models then dshm", len(s.Volumes) == 2 && s.Volumes[0].Name == "models" && s.Volumes[1].Name == "dshm"},
		{"shm is memory-backed, half the 8Gi limit", s.Volumes[1].EmptyDir.Medium == corev1.StorageMediumMemory && s.Volumes[1].EmptyDir.SizeLimit.Cmp(resource.MustParse("4Gi")) == 0},
		{"gpu limit and equal request", main.Resources.Limits.Name("nvidia.com/gpu", resource.DecimalSI).Value() == 1 && main.Resources.Requests.Name("nvidia.com/gpu", resource.DecimalSI).Value() == 1},
		{"empty env value is kept as a value", countEnv(main, "EMPTY") == 1},
		{"OMP_NUM_THREADS from 2500m is 2", envValue(main, "OMP_NUM_THREADS") == "2"},
		{"OMP_NUM_THREADS from 500m is 1", envValue(&s.Containers[1], "OMP_NUM_THREADS") == "1"},
		{"mounts", len(main.VolumeMounts) == 2 && main.VolumeMounts[0].MountPath == "/models" && main.VolumeMounts[1].MountPath == "/dev/shm"},
		{"no warnings", len(res.Warnings()) == 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not as expected; pod spec: %+v", c.what, s)
		}
	}
}

func envValue(c *corev1.Container, name string) string {
	v, _ := envOf(c, name)
	return v
}

// TestUserWins covers the default conflict rule: the Pod's own value is never overwritten,
// the item is reported as skipped and becomes a warning.
func TestUserWins(t *testing.T) {
	set := mustParse(t, testProfiles)
	cases := []struct {
		name       string
		opt        podOpt
		field, key string
		check      func(p *corev1.Pod) bool
	}{
		{"env var of the same name", onMain(func(c *corev1.Container) { c.Env = []corev1.EnvVar{{Name: "NCCL_DEBUG", Value: "INFO"}} }),
			"env", "NCCL_DEBUG", func(p *corev1.Pod) bool { return envValue(&p.Spec.Containers[0], "NCCL_DEBUG") == "INFO" }},
		{"env var from a secret", onMain(func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "NCCL_DEBUG", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}}
		}), "env", "NCCL_DEBUG", func(p *corev1.Pod) bool { return p.Spec.Containers[0].Env[0].ValueFrom != nil }},
		{"existing GPU limit", onMain(func(c *corev1.Container) { c.Resources.Limits = limits("nvidia.com/gpu", "4") }),
			"limits", "nvidia.com/gpu", func(p *corev1.Pod) bool {
				return p.Spec.Containers[0].Resources.Limits.Name("nvidia.com/gpu", "").Value() == 4
			}},
		{"GPU request without limit", onMain(func(c *corev1.Container) { c.Resources.Requests = limits("nvidia.com/gpu", "2") }),
			"limits", "nvidia.com/gpu", func(p *corev1.Pod) bool {
				_, has := p.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"]
				return !has
			}},
		{"runtimeClassName", func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr.To("kata") },
			"runtimeClassName", "", func(p *corev1.Pod) bool { return *p.Spec.RuntimeClassName == "kata" }},
		{"schedulerName", func(p *corev1.Pod) { p.Spec.SchedulerName = "my-scheduler" },
			"schedulerName", "", func(p *corev1.Pod) bool { return p.Spec.SchedulerName == "my-scheduler" }},
		{"nodeSelector key", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"nvidia.com/gpu.present": "false"} },
			"nodeSelector", "nvidia.com/gpu.present", func(p *corev1.Pod) bool { return p.Spec.NodeSelector["nvidia.com/gpu.present"] == "false" }},
		{"toleration for the same taint", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: "Equal", Value: "x", Effect: "NoSchedule"}}
		}, "tolerations", "nvidia.com/gpu", func(p *corev1.Pod) bool { return len(p.Spec.Tolerations) == 1 && p.Spec.Tolerations[0].Value == "x" }},
		{"label", withLabel("team.example.com/workload", "eval"),
			"labels", "team.example.com/workload", func(p *corev1.Pod) bool { return p.Labels["team.example.com/workload"] == "eval" }},
		{"volume name", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "models", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/m"}}}}
		}, "volumes", "models", func(p *corev1.Pod) bool { return p.Spec.Volumes[0].HostPath != nil }},
		{"a volume of the profile's name: the pod's own is neither replaced nor mounted", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "dshm", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
		}, "volumeMounts", "/dev/shm", func(p *corev1.Pod) bool {
			return len(p.Spec.Volumes) == 2 && mountIndex(&p.Spec.Containers[0], "/dev/shm") < 0 && p.Spec.Volumes[0].PersistentVolumeClaim != nil
		}},
		{"mount path in use", onMain(func(c *corev1.Container) {
			c.VolumeMounts = []corev1.VolumeMount{{Name: "mine", MountPath: "/models"}}
		}), "volumeMounts", "/models", func(p *corev1.Pod) bool { return p.Spec.Containers[0].VolumeMounts[0].Name == "mine" }},
		{"required affinity on the same key", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "gpu-type", Operator: "In", Values: []string{"t4"}}}}}}}}
		}, "affinity.required", "gpu-type", func(p *corev1.Pod) bool {
			e := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions
			return len(e) == 1 && e[0].Values[0] == "t4"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod(withProfile("train"), tc.opt)
			res, got, err := mutate(t, set, pod)
			if err != nil {
				t.Fatal(err)
			}
			it, ok := findItem(res, tc.field, tc.key)
			if !ok || it.Action != Skipped {
				t.Fatalf("want %s %s skipped, got %+v", tc.field, tc.key, it)
			}
			if !tc.check(got) {
				t.Fatalf("the Pod's own value was not kept: %+v", got.Spec)
			}
			warned := false
			for _, w := range res.Warnings() {
				if len(w) >= 120 {
					t.Errorf("warning over 120 characters: %q", w)
				}
				warned = warned || strings.Contains(w, tc.field)
			}
			if !warned {
				t.Errorf("no warning names %s: %v", tc.field, res.Warnings())
			}
		})
	}
}

func TestAPIDefaultSchedulerNameIsNoUserChoice(t *testing.T) {
	set := mustParse(t, testProfiles)
	res, got, err := mutate(t, set, newPod(withProfile("train"), func(p *corev1.Pod) { p.Spec.SchedulerName = corev1.DefaultSchedulerName }))
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.SchedulerName != "volcano" || len(res.Warnings()) != 0 {
		t.Fatalf("the API server's default must give way to the profile: %q %v", got.Spec.SchedulerName, res.Warnings())
	}
}

func TestEnforcedFieldsWin(t *testing.T) {
	set := mustParse(t, testProfiles)
	pod := newPod(withProfile("enforcing"), func(p *corev1.Pod) {
		p.Spec.RuntimeClassName = ptr.To("runc")
		p.Spec.NodeSelector = map[string]string{"pool": "cpu"}
		p.Spec.Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: "Equal", Value: "v", Effect: "NoSchedule"}}
	}, onMain(func(c *corev1.Container) {
		c.Env = []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "NCCL_DEBUG", Value: "TRACE"}}
		c.Resources.Limits = limits("nvidia.com/gpu", "8")
		c.Resources.Requests = limits("nvidia.com/gpu", "8")
	}))
	res, got, err := mutate(t, set, pod)
	if err != nil {
		t.Fatal(err)
	}
	c := &got.Spec.Containers[0]
	if *got.Spec.RuntimeClassName != "nvidia" || got.Spec.NodeSelector["pool"] != "gpu" || got.Spec.Tolerations[0].Operator != "Exists" ||
		envValue(c, "NCCL_DEBUG") != "WARN" || c.Env[1].Name != "NCCL_DEBUG" ||
		c.Resources.Limits.Name("nvidia.com/gpu", "").Value() != 2 || c.Resources.Requests.Name("nvidia.com/gpu", "").Value() != 2 {
		t.Fatalf("enforced values not applied: %+v", got.Spec)
	}
	for _, it := range res.Items {
		if it.Action != Enforced && it.Action != Applied {
			t.Errorf("want every item enforced, got %+v", it)
		}
	}
	if len(res.Warnings()) != 0 {
		t.Errorf("enforcing is the operator's choice, not a skipped item: %v", res.Warnings())
	}
}

func TestDerivedValues(t *testing.T) {
	set := mustParse(t, testProfiles)
	cases := []struct {
		name  string
		pod   *corev1.Pod
		check func(t *testing.T, res *Result, p *corev1.Pod)
	}{
		{"shm uses the default size without a memory limit", newPod(withProfile("train")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if q := p.Spec.Volumes[1].EmptyDir.SizeLimit; q == nil || q.Cmp(resource.MustParse("1Gi")) != 0 {
				t.Fatalf("shm size %v, want 1Gi", q)
			}
		}},
		{"shm follows the largest memory limit", newPod(withProfile("train"), onMain(func(c *corev1.Container) { c.Resources.Limits = limits("memory", "2Gi") }),
			withContainer(corev1.Container{Name: "big", Image: "i", Resources: corev1.ResourceRequirements{Limits: limits("memory", "10Gi")}})),
			func(t *testing.T, _ *Result, p *corev1.Pod) {
				if q := p.Spec.Volumes[1].EmptyDir.SizeLimit; q.Cmp(resource.MustParse("5Gi")) != 0 {
					t.Fatalf("shm size %v, want 5Gi", q)
				}
			}},
		{"a memory-backed shm volume of the user's is kept", newPod(withProfile("train"), func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "dshm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}
		}), func(t *testing.T, res *Result, p *corev1.Pod) {
			if it, _ := findItem(res, "volumes", "dshm"); it.Action != Kept || p.Spec.Volumes[0].EmptyDir.SizeLimit != nil {
				t.Fatalf("user shm changed: %+v %+v", it, p.Spec.Volumes)
			}
		}},
		{"no shm volume when every container mounts /dev/shm already", newPod(withProfile("train"), func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "own", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "own", MountPath: "/dev/shm"}}
		}), func(t *testing.T, _ *Result, p *corev1.Pod) {
			for _, v := range p.Spec.Volumes {
				if v.Name == "dshm" {
					t.Fatalf("unused dshm volume added")
				}
			}
		}},
		{"no OMP_NUM_THREADS without a cpu limit", newPod(withProfile("train")), func(t *testing.T, res *Result, p *corev1.Pod) {
			if _, ok := envOf(&p.Spec.Containers[0], "OMP_NUM_THREADS"); ok {
				t.Fatal("OMP_NUM_THREADS set without a cpu limit")
			}
			if it, _ := findItem(res, "env", "OMP_NUM_THREADS"); it.Action != NotUsed {
				t.Fatalf("want not used, got %+v", it)
			}
		}},
		{"train hides GPUs from a sidecar", newPod(withProfile("train"), withSidecar("logs")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if v := envValue(&p.Spec.InitContainers[0], "NVIDIA_VISIBLE_DEVICES"); v != "void" {
				t.Fatalf("sidecar NVIDIA_VISIBLE_DEVICES=%q, want void", v)
			}
			if _, ok := envOf(&p.Spec.Containers[0], "NVIDIA_VISIBLE_DEVICES"); ok {
				t.Fatal("the GPU container must see its GPU")
			}
		}},
		{"CPU-only pod gets no NVIDIA_VISIBLE_DEVICES", newPod(withProfile("named"), withContainer(corev1.Container{Name: "worker", Image: "i"})), func(t *testing.T, _ *Result, p *corev1.Pod) {
			for _, c := range p.Spec.Containers {
				if _, ok := envOf(&c, "NVIDIA_VISIBLE_DEVICES"); ok {
					t.Fatal("set on a pod that requests no GPU")
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, got, err := mutate(t, set, tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, res, got)
		})
	}
}

func TestAffinityNarrowsEveryTerm(t *testing.T) {
	set := mustParse(t, testProfiles)
	pod := newPod(withProfile("train"), func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{
				{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: "In", Values: []string{"a"}}}},
				{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: "In", Values: []string{"n1"}}}},
			}}}}
	})
	_, got, err := mutate(t, set, pod)
	if err != nil {
		t.Fatal(err)
	}
	for i, term := range got.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		found := false
		for _, e := range term.MatchExpressions {
			found = found || e.Key == "gpu-type"
		}
		if !found {
			t.Errorf("term %d not narrowed by gpu-type: %+v", i, term)
		}
	}
}

func TestPriorityClassDropsResolvedPriority(t *testing.T) {
	set := mustParse(t, testProfiles)
	pod := newPod(withProfile("priority"), func(p *corev1.Pod) {
		p.Spec.Priority = ptr.To[int32](0)
		p.Spec.PreemptionPolicy = ptr.To(corev1.PreemptLowerPriority)
	})
	_, got, err := mutate(t, set, pod)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.PriorityClassName != "batch-high" || got.Spec.Priority != nil || got.Spec.PreemptionPolicy != nil {
		t.Fatalf("want class set and resolved priority removed, got %q %v %v", got.Spec.PriorityClassName, got.Spec.Priority, got.Spec.PreemptionPolicy)
	}
}

func TestMountOfAMissingVolumeIsSkipped(t *testing.T) {
	set := mustParse(t, testProfiles)
	res, got, err := mutate(t, set, newPod(withProfile("mounts")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Containers[0].VolumeMounts) != 0 {
		t.Fatal("a mount of a volume the pod lacks makes the API server reject the pod")
	}
	if it, _ := findItem(res, "volumeMounts", "/data"); it.Action != Skipped || !strings.Contains(it.Detail, "not-in-pod") {
		t.Fatalf("want a skipped item naming the volume, got %+v", it)
	}
}

func TestPatchIsDeterministic(t *testing.T) {
	set := mustParse(t, testProfiles)
	pod := newPod(withProfile("train"), onMain(func(c *corev1.Container) { c.Resources.Limits = limits("cpu", "4", "memory", "1Gi") }))
	first, _, _ := mutate(t, set, pod)
	for i := 0; i < 20; i++ {
		again, _, _ := mutate(t, set, pod)
		if len(again.Patch) != len(first.Patch) {
			t.Fatal("patch length differs between runs")
		}
		for j := range again.Patch {
			if again.Patch[j].Path != first.Patch[j].Path || again.Patch[j].Op != first.Patch[j].Op {
				t.Fatalf("op %d differs: %+v vs %+v", j, again.Patch[j], first.Patch[j])
			}
		}
	}
}

func TestPatchEscapesAndCreatesArrays(t *testing.T) {
	set := mustParse(t, testProfiles)
	res, _, err := mutate(t, set, newPod(withProfile("train")))
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for _, op := range res.Patch {
		paths[op.Op+" "+op.Path] = true
	}
	for _, want := range []string{
		"add /metadata/labels/team.example.com~1workload",
		"add /metadata/annotations",
		"add /spec/tolerations",
		"add /spec/volumes",
		"add /spec/volumes/-",
		"add /spec/containers/0/env",
		"add /spec/containers/0/resources",
	} {
		if !paths[want] {
			t.Errorf("missing op %q in %v", want, paths)
		}
	}
}
