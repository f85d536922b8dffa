package inject

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// ruleProfiles exercise the rules that keep a Pod valid and the user's choices intact.
const ruleProfiles = `
profiles:
- name: mounts
  pod:
    volumes: [{name: model-cache, emptyDir: {sizeLimit: 100Gi}}]
  container:
    volumeMounts: [{name: model-cache, mountPath: /models}]
  derived:
    shm: {fraction: 0.5, default: 1Gi}
- name: mounts-enforced
  pod:
    volumes: [{name: model-cache, emptyDir: {sizeLimit: 100Gi}}]
  container:
    volumeMounts: [{name: model-cache, mountPath: /models}]
  derived:
    shm: {fraction: 0.5, default: 1Gi}
  enforce: [volumeMounts]
- name: shm-mount-enforced
  derived:
    shm: {fraction: 0.5, default: 1Gi}
  enforce: ["volumeMounts:/dev/shm"]
- name: volumes-enforced
  derived:
    shm: {fraction: 0.5, default: 1Gi}
  enforce: [volumes]
- name: runtime-enforced
  pod: {runtimeClassName: nvidia}
  enforce: [runtimeClassName]
- name: runtime
  pod: {runtimeClassName: nvidia}
- name: env
  container:
    env:
    - {name: NCCL_DEBUG, value: WARN}
    - {name: NCCL_SOCKET_IFNAME, value: eth0}
    - {name: PYTHONUNBUFFERED, value: "1"}
- name: env-enforced
  container:
    env: [{name: NCCL_DEBUG, value: WARN}]
  enforce: ["env:NCCL_DEBUG"]
- name: limits-enforced
  container:
    limits: {memory: 4Gi, nvidia.com/gpu: "1"}
  enforce: [limits]
- name: explicit-shm
  pod:
    volumes: [{name: myshm, emptyDir: {medium: Memory}}]
  container:
    volumeMounts: [{name: myshm, mountPath: /dev/shm/}]
  enforce: [volumeMounts]
- name: env-all-enforced
  container:
    env: [{name: NCCL_SOCKET_IFNAME, value: eth0}, {name: NCCL_DEBUG, value: WARN}]
  enforce: [env]
- name: gpu-node
  pod: {runtimeClassName: nvidia, nodeSelector: {nvidia.com/gpu.present: "true"}}
  derived: {hideGPUsFromNonGPUContainers: true}
- name: gpu-limit
  container:
    limits: {nvidia.com/gpu: "1"}
  derived: {hideGPUsFromNonGPUContainers: true}
- name: gpu-select
  containers: {select: gpu}
  container:
    env: [{name: X, value: "1"}]
- name: dra
  containers: {sidecars: true}
  container:
    resourceClaims: [{name: gpu, resourceClaimTemplateName: single-gpu}]
  derived:
    shm: {fraction: 0.5, default: 1Gi}
    ompNumThreadsFromCPU: true
    hideGPUsFromNonGPUContainers: true
- name: dra-runtime-when-gpu
  pod: {runtimeClassName: nvidia, runtimeClassWhen: gpu}
  container:
    resourceClaims: [{name: gpu, resourceClaimTemplateName: single-gpu}]
- name: sized
  container:
    limits: {memory: 4Gi}
  derived:
    shm: {fraction: 0.5, default: 8Gi}
    ompNumThreadsFromCPU: true
`

func ruleSet(t testing.TB) *profile.Set { return mustParse(t, ruleProfiles) }

func volumeNamed(p *corev1.Pod, name string) *corev1.Volume {
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].Name == name {
			return &p.Spec.Volumes[i]
		}
	}
	return nil
}

func mountAt(c *corev1.Container, path string) string {
	if i := mountIndex(c, path); i >= 0 {
		return c.VolumeMounts[i].Name
	}
	return ""
}

func pvc(name, claim string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}
}

func memoryEmptyDir(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}
}

func withVolume(v corev1.Volume) podOpt {
	return func(p *corev1.Pod) { p.Spec.Volumes = append(p.Spec.Volumes, v) }
}

func withMount(name, path string) podOpt {
	return onMain(func(c *corev1.Container) {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: path})
	})
}

// ruleCase is one Pod through one profile; check looks at the result. Every case also checks
// that the mutated Pod is valid and that a second admission changes nothing.
type ruleCase struct {
	name    string
	profile string
	pod     *corev1.Pod
	check   func(t *testing.T, res *Result, p *corev1.Pod)
}

func runRules(t *testing.T, cases []ruleCase) {
	t.Helper()
	set := ruleSet(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			withProfile(tc.profile)(tc.pod)
			res, got, err := mutate(t, set, tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			checkValid(t, tc.pod, got)
			tc.check(t, res, got)
			apiDefaults(got)
			if again, _, err := mutate(t, set, got); err != nil || len(again.Patch) != 0 {
				t.Fatalf("second admission: %v %+v", err, again.Patch)
			}
		})
	}
}

func wantItem(t *testing.T, res *Result, field, key string, a Action) Item {
	t.Helper()
	for _, it := range res.Items {
		if it.Field == field && it.Key == key && it.Action == a {
			return it
		}
	}
	t.Fatalf("want %s %s %s, got %+v", field, key, a, res.Items)
	return Item{}
}

// TestEnforcedMountsNeverLeaveAPodInvalid: an enforced mount points at a volume the Pod has.
func TestEnforcedMountsNeverLeaveAPodInvalid(t *testing.T) {
	runRules(t, []ruleCase{
		{"an enforced /dev/shm mount replacing the Pod's own brings the dshm volume", "shm-mount-enforced",
			newPod(withVolume(pvc("own", "c")), withMount("own", "/dev/shm")), func(t *testing.T, res *Result, p *corev1.Pod) {
				if mountAt(&p.Spec.Containers[0], "/dev/shm") != "dshm" || volumeNamed(p, "dshm") == nil || !isMemoryEmptyDir(volumeNamed(p, "dshm")) {
					t.Fatalf("want /dev/shm on a memory dshm volume: %+v", p.Spec)
				}
				wantItem(t, res, "volumeMounts", "/dev/shm", Enforced)
			}},
		{"enforced mounts on every container, some with their own /dev/shm", "mounts-enforced",
			newPod(withVolume(pvc("own", "c")), withMount("own", "/dev/shm"), withContainer(corev1.Container{Name: "b", Image: "i"})),
			func(t *testing.T, _ *Result, p *corev1.Pod) {
				for _, c := range p.Spec.Containers {
					if mountAt(&c, "/dev/shm") != "dshm" {
						t.Fatalf("%s: /dev/shm not on dshm: %+v", c.Name, c.VolumeMounts)
					}
				}
			}},
		{"enforced volumes replace the Pod's own dshm and size it", "volumes-enforced",
			newPod(withVolume(pvc("dshm", "c")), onMain(func(c *corev1.Container) { c.Resources.Limits = limits("memory", "2Gi") })),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				v := volumeNamed(p, "dshm")
				if !isMemoryEmptyDir(v) || v.EmptyDir.SizeLimit.Cmp(resource.MustParse("1Gi")) != 0 || mountAt(&p.Spec.Containers[0], "/dev/shm") != "dshm" {
					t.Fatalf("want dshm replaced by a 1Gi memory volume and mounted: %+v", p.Spec)
				}
				wantItem(t, res, "volumes", "dshm", Enforced)
			}},
	})
}

// TestTheUsersVolumeIsNeverTakenForTheProfiles: a volume of the profile's name that the Pod
// defines differently, or uses at its own path, stays the user's; the profile does not mount it.
func TestTheUsersVolumeIsNeverTakenForTheProfiles(t *testing.T) {
	runRules(t, []ruleCase{
		{"enforced mounts keep the Pod's PVC at /models when the Pod has its own model-cache", "mounts-enforced",
			newPod(withVolume(pvc("data", "models")), withVolume(corev1.Volume{Name: "model-cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}),
				withMount("data", "/models")),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if mountAt(&p.Spec.Containers[0], "/models") != "data" {
					t.Fatalf("/models re-pointed: %+v", p.Spec.Containers[0].VolumeMounts)
				}
				wantItem(t, res, "volumeMounts", "/models", Skipped)
			}},
		{"a user's memory emptyDir named dshm used for /scratch is not reused as /dev/shm", "mounts",
			newPod(withVolume(memoryEmptyDir("dshm")), withMount("dshm", "/scratch")), func(t *testing.T, res *Result, p *corev1.Pod) {
				if mountAt(&p.Spec.Containers[0], "/dev/shm") != "" {
					t.Fatalf("the user's /scratch volume mounted at /dev/shm: %+v", p.Spec.Containers[0].VolumeMounts)
				}
				wantItem(t, res, "volumes", "dshm", Skipped)
				wantItem(t, res, "volumeMounts", "/dev/shm", Skipped)
			}},
		{"a volume identical to the profile's but mounted at the Pod's own path is the Pod's", "mounts",
			newPod(withVolume(corev1.Volume{Name: "model-cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("100Gi"))}}}),
				withMount("model-cache", "/data")),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if mountAt(&p.Spec.Containers[0], "/models") != "" {
					t.Fatalf("the user's volume mounted at /models too: %+v", p.Spec.Containers[0].VolumeMounts)
				}
				wantItem(t, res, "volumes", "model-cache", Skipped)
			}},
		{"the user's own memory /dev/shm under the profile's name is kept as it is", "mounts",
			newPod(withVolume(memoryEmptyDir("dshm")), withMount("dshm", "/dev/shm")), func(t *testing.T, res *Result, p *corev1.Pod) {
				wantItem(t, res, "volumes", "dshm", Kept)
				if volumeNamed(p, "dshm").EmptyDir.SizeLimit != nil {
					t.Fatal("the user's shm was resized")
				}
			}},
	})
}

// TestRuntimeClassChangeDropsOverhead: the overhead belongs to the class the Pod had.
func TestRuntimeClassChangeDropsOverhead(t *testing.T) {
	kata := func(p *corev1.Pod) {
		p.Spec.RuntimeClassName = ptr.To("kata")
		p.Spec.Overhead = limits("cpu", "250m", "memory", "120Mi")
	}
	runRules(t, []ruleCase{
		{"an enforced class removes the old class's overhead", "runtime-enforced", newPod(kata), func(t *testing.T, res *Result, p *corev1.Pod) {
			if *p.Spec.RuntimeClassName != "nvidia" || p.Spec.Overhead != nil {
				t.Fatalf("want nvidia without overhead, got %v %v", *p.Spec.RuntimeClassName, p.Spec.Overhead)
			}
			for _, op := range res.Patch {
				if op.Op == "remove" && op.Path == "/spec/overhead" {
					return
				}
			}
			t.Fatalf("no remove of /spec/overhead in %+v", res.Patch)
		}},
		{"the user's class keeps its overhead", "runtime", newPod(kata), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if *p.Spec.RuntimeClassName != "kata" || len(p.Spec.Overhead) != 2 {
				t.Fatalf("the user's class changed: %v %v", *p.Spec.RuntimeClassName, p.Spec.Overhead)
			}
		}},
		{"a Pod that already has the class keeps its overhead", "runtime-enforced", newPod(func(p *corev1.Pod) {
			p.Spec.RuntimeClassName = ptr.To("nvidia")
			p.Spec.Overhead = limits("cpu", "10m")
		}), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if len(p.Spec.Overhead) != 1 {
				t.Fatal("overhead of the same class removed")
			}
		}},
	})
}

func withEnv(env ...string) podOpt {
	return onMain(func(c *corev1.Container) {
		for i := 0; i < len(env); i += 2 {
			c.Env = append(c.Env, corev1.EnvVar{Name: env[i], Value: env[i+1]})
		}
	})
}

// TestDuplicateEnvNamesActOnTheLastEntry: the container runtime uses the last entry of a name.
func TestDuplicateEnvNamesActOnTheLastEntry(t *testing.T) {
	runRules(t, []ruleCase{
		{"the last entry equal to the profile's is kept", "env", newPod(withEnv("NCCL_DEBUG", "INFO", "NCCL_DEBUG", "WARN")),
			func(t *testing.T, res *Result, _ *corev1.Pod) {
				wantItem(t, res, "env", "NCCL_DEBUG", Kept)
				if len(res.Warnings()) != 0 {
					t.Fatalf("warned about a value the runtime does not use: %v", res.Warnings())
				}
			}},
		{"the last entry differing is skipped", "env", newPod(withEnv("NCCL_DEBUG", "WARN", "NCCL_DEBUG", "TRACE")),
			func(t *testing.T, res *Result, _ *corev1.Pod) { wantItem(t, res, "env", "NCCL_DEBUG", Skipped) }},
		{"enforce replaces the entry the runtime uses", "env-enforced", newPod(withEnv("NCCL_DEBUG", "WARN", "NCCL_DEBUG", "TRACE")),
			func(t *testing.T, _ *Result, p *corev1.Pod) {
				if env := p.Spec.Containers[0].Env; env[len(env)-1].Value != "WARN" {
					t.Fatalf("the last NCCL_DEBUG is %q", env[len(env)-1].Value)
				}
			}},
	})
}

func withEnvFrom(prefix string) podOpt {
	return onMain(func(c *corev1.Container) {
		c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{Prefix: prefix, ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}})
	})
}

// TestEnvFromIsNeverOverriddenSilently: an explicit env entry wins over envFrom, so a profile
// variable that envFrom may provide is skipped with a warning unless enforced.
func TestEnvFromIsNeverOverriddenSilently(t *testing.T) {
	runRules(t, []ruleCase{
		{"envFrom without a prefix may set any name: skipped with a warning", "env", newPod(withEnvFrom("")),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				wantItem(t, res, "env", "NCCL_DEBUG", Skipped)
				if len(p.Spec.Containers[0].Env) != 0 || !strings.Contains(strings.Join(res.Warnings(), "\n"), `env NCCL_DEBUG (envFrom may set it)`) {
					t.Fatalf("env %v, warnings %v", p.Spec.Containers[0].Env, res.Warnings())
				}
			}},
		{"envFrom with a prefix the name lacks cannot set it: applied", "env", newPod(withEnvFrom("APP_")),
			func(t *testing.T, res *Result, _ *corev1.Pod) { wantItem(t, res, "env", "NCCL_DEBUG", Applied) }},
		{"envFrom with the name's prefix may set it: skipped", "env", newPod(withEnvFrom("NCCL_")),
			func(t *testing.T, res *Result, _ *corev1.Pod) {
				wantItem(t, res, "env", "NCCL_DEBUG", Skipped)
				wantItem(t, res, "env", "PYTHONUNBUFFERED", Applied)
			}},
		{"enforced: the profile's value wins over envFrom, reported", "env-enforced", newPod(withEnvFrom("")),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				wantItem(t, res, "env", "NCCL_DEBUG", Enforced)
				if envValue(&p.Spec.Containers[0], "NCCL_DEBUG") != "WARN" {
					t.Fatal("enforced env not set")
				}
			}},
	})
}

func withGPU(resources ...string) podOpt {
	return onMain(func(c *corev1.Container) { c.Resources.Limits = limits(resources...) })
}

// TestGPUHidingHasNoHoles: every container requesting no GPU is hidden from the node's GPUs;
// a MIG slice or a shared GPU of the profile's vendor counts as a GPU request.
func TestGPUHidingHasNoHoles(t *testing.T) {
	hidden := func(c *corev1.Container) bool { return envValue(c, "NVIDIA_VISIBLE_DEVICES") == "void" }
	runRules(t, []ruleCase{
		{"a CPU notebook the profile puts on GPU nodes is hidden", "gpu-node", newPod(), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if !hidden(&p.Spec.Containers[0]) {
				t.Fatalf("not hidden: %+v", p.Spec.Containers[0].Env)
			}
		}},
		{"nvidia.com/gpu: 0 requests no GPU and is hidden", "gpu-node", newPod(withGPU("nvidia.com/gpu", "0")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if !hidden(&p.Spec.Containers[0]) {
				t.Fatal("not hidden")
			}
		}},
		{"a MIG slice is a GPU request: not hidden, and no whole GPU added", "gpu-limit", newPod(withGPU("nvidia.com/mig-1g.10gb", "1")),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				if hidden(c) {
					t.Fatal("the MIG container is hidden from its own device")
				}
				if _, ok := c.Resources.Limits["nvidia.com/gpu"]; ok {
					t.Fatalf("a whole GPU added beside the MIG slice: %v", c.Resources.Limits)
				}
				wantItem(t, res, "limits", "nvidia.com/gpu", Skipped)
			}},
		{"a time-sliced shared GPU is a GPU request", "gpu-node", newPod(withGPU("nvidia.com/gpu.shared", "1")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if hidden(&p.Spec.Containers[0]) {
				t.Fatal("hidden")
			}
		}},
		{"another vendor's resource is no GPU of this profile", "gpu-node", newPod(withGPU("example.com/gpu", "1")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if !hidden(&p.Spec.Containers[0]) {
				t.Fatal("not hidden")
			}
		}},
		{"select gpu reaches a MIG container", "gpu-select", newPod(withGPU("nvidia.com/mig-3g.40gb", "1")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if envValue(&p.Spec.Containers[0], "X") != "1" {
				t.Fatal("MIG container not selected")
			}
		}},
		{"a container given the profile's GPU is not hidden, its sidecar is", "gpu-limit", newPod(withSidecar("logs")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if hidden(&p.Spec.Containers[0]) || !hidden(&p.Spec.InitContainers[0]) {
				t.Fatalf("app %v, sidecar %v", p.Spec.Containers[0].Env, p.Spec.InitContainers[0].Env)
			}
		}},
	})
}

func TestDefaultProfileForAMIGPod(t *testing.T) {
	set := mustParse(t, "defaultProfile: a\nprofiles: [{name: a, pod: {runtimeClassName: nvidia}}]")
	res, _, err := mutate(t, set, newPod(withGPU("nvidia.com/mig-1g.10gb", "1")))
	if err != nil || res.Profile == nil {
		t.Fatalf("a MIG Pod is a GPU Pod for the default profile: %v %+v", err, res)
	}
}

func shmSize(p *corev1.Pod) string {
	v := volumeNamed(p, "dshm")
	if v == nil || v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil {
		return "none"
	}
	return v.EmptyDir.SizeLimit.String()
}

// TestShmAndOMPFollowTheLimitsAsTheProfileLeavesThem: sizes come after the profile's own limits,
// consider pod-level resources, and a limit of 0 (no limit) gives the default size.
func TestShmAndOMPFollowTheLimitsAsTheProfileLeavesThem(t *testing.T) {
	podLevel := func(kv ...string) podOpt {
		return func(p *corev1.Pod) { p.Spec.Resources = &corev1.ResourceRequirements{Limits: limits(kv...)} }
	}
	runRules(t, []ruleCase{
		{"shm is half the profile's 4Gi limit, not its 8Gi default", "sized", newPod(), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if shmSize(p) != "2Gi" {
				t.Fatalf("shm %s, want 2Gi", shmSize(p))
			}
		}},
		{"shm follows a pod-level memory limit", "mounts", newPod(podLevel("memory", "6Gi")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if shmSize(p) != "3Gi" {
				t.Fatalf("shm %s, want 3Gi", shmSize(p))
			}
		}},
		{"a pod-level limit below the container's bounds shm", "mounts", newPod(podLevel("memory", "2Gi"), withGPU("memory", "8Gi")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if shmSize(p) != "1Gi" {
				t.Fatalf("shm %s, want 1Gi", shmSize(p))
			}
		}},
		{"a memory limit of 0 sets no limit: the default size, truthfully explained", "mounts", newPod(withGPU("memory", "0")), func(t *testing.T, res *Result, p *corev1.Pod) {
			if shmSize(p) != "1Gi" {
				t.Fatalf("shm %s, want the 1Gi default", shmSize(p))
			}
			if it := wantItem(t, res, "volumes", "dshm", Applied); !strings.Contains(it.Detail, "default size") {
				t.Fatalf("explain says %q", it.Detail)
			}
		}},
		{"a pod-level memory budget wins over the profile's container limit; shm follows it", "sized", newPod(podLevel("memory", "2Gi")),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if _, ok := p.Spec.Containers[0].Resources.Limits["memory"]; ok || shmSize(p) != "1Gi" {
					t.Fatalf("limits %v, shm %s; want no container limit and 1Gi", p.Spec.Containers[0].Resources.Limits, shmSize(p))
				}
				wantItem(t, res, "limits", "memory", Skipped)
			}},
		{"a memory limit beyond 2^63 bytes sizes shm from it, not to one byte", "mounts", newPod(withGPU("memory", "100E")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if got := volumeNamed(p, "dshm").EmptyDir.SizeLimit; got.Cmp(resource.MustParse("50E")) != 0 {
				t.Fatalf("shm %s, want 50E", got.String())
			}
		}},
		{"OMP_NUM_THREADS from a pod-level cpu limit", "sized", newPod(podLevel("cpu", "3500m")), func(t *testing.T, _ *Result, p *corev1.Pod) {
			if v := envValue(&p.Spec.Containers[0], "OMP_NUM_THREADS"); v != "3" {
				t.Fatalf("OMP_NUM_THREADS=%q, want 3", v)
			}
		}},
		{"a cpu limit of 0 is no limit", "sized", newPod(withGPU("cpu", "0")), func(t *testing.T, res *Result, _ *corev1.Pod) {
			wantItem(t, res, "env", "OMP_NUM_THREADS", NotUsed)
		}},
	})
}

// TestEnforcedLimitsKeepTheRequestsTheyAllow: enforce owns the limit; a cpu or memory request
// changes only when it would exceed the new limit (extended resources need request = limit).
func TestEnforcedLimitsKeepTheRequestsTheyAllow(t *testing.T) {
	req := func(p *corev1.Pod) corev1.ResourceList { return p.Spec.Containers[0].Resources.Requests }
	runRules(t, []ruleCase{
		{"a memory request below the enforced limit is the Pod's", "limits-enforced",
			newPod(withGPU("memory", "16Gi"), onMain(func(c *corev1.Container) {
				c.Resources.Requests = corev1.ResourceList{"memory": resource.MustParse("2Gi")}
			})),
			func(t *testing.T, _ *Result, p *corev1.Pod) {
				if q := req(p)["memory"]; q.String() != "2Gi" {
					t.Fatalf("memory request %s, want the Pod's 2Gi", q.String())
				}
			}},
		{"a request only, below the enforced limit, is kept", "limits-enforced",
			newPod(onMain(func(c *corev1.Container) {
				c.Resources.Requests = corev1.ResourceList{"memory": resource.MustParse("1Gi")}
			})),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if q := req(p)["memory"]; q.String() != "1Gi" {
					t.Fatalf("memory request %s, want the Pod's 1Gi", q.String())
				}
				if it := wantItem(t, res, "limits", "memory", Enforced); it.Detail != "was no limit (request 1Gi), now 4Gi" {
					t.Fatalf("explain says %q: the request was not replaced", it.Detail)
				}
			}},
		{"a request equal to the old limit follows the enforced one: Guaranteed QoS stays", "limits-enforced",
			newPod(withGPU("memory", "2Gi"), onMain(func(c *corev1.Container) { c.Resources.Requests = limits("memory", "2Gi") })),
			func(t *testing.T, _ *Result, p *corev1.Pod) {
				if q := req(p)["memory"]; q.String() != "4Gi" {
					t.Fatalf("memory request %s, want 4Gi like the limit", q.String())
				}
			}},
		{"a memory request above the enforced limit comes down to it", "limits-enforced",
			newPod(withGPU("memory", "16Gi"), onMain(func(c *corev1.Container) {
				c.Resources.Requests = corev1.ResourceList{"memory": resource.MustParse("8Gi")}
			})),
			func(t *testing.T, _ *Result, p *corev1.Pod) {
				if q := req(p)["memory"]; q.String() != "4Gi" {
					t.Fatalf("memory request %s, want 4Gi", q.String())
				}
			}},
		{"an extended resource's request follows its enforced limit", "limits-enforced", newPod(withGPU("nvidia.com/gpu", "2"),
			onMain(func(c *corev1.Container) { c.Resources.Requests = limits("nvidia.com/gpu", "2") })),
			func(t *testing.T, _ *Result, p *corev1.Pod) {
				if q := req(p)["nvidia.com/gpu"]; q.String() != "1" {
					t.Fatalf("gpu request %s, want 1", q.String())
				}
			}},
	})
}

// TestMountPathsAreComparedCleaned: /models/ and /models are one directory.
func TestMountPathsAreComparedCleaned(t *testing.T) {
	runRules(t, []ruleCase{
		{"a user mount at /models/ keeps /models", "mounts", newPod(withVolume(pvc("data", "c")), withMount("data", "/models/")),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if n := len(p.Spec.Containers[0].VolumeMounts); n != 2 { // /models/ and /dev/shm
					t.Fatalf("%d mounts: %+v", n, p.Spec.Containers[0].VolumeMounts)
				}
				wantItem(t, res, "volumeMounts", "/models", Skipped)
			}},
		{"the profile's volume mounted at /models/ is kept", "mounts", newPod(withVolume(corev1.Volume{Name: "model-cache",
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("100Gi"))}}}), withMount("model-cache", "/models/")),
			func(t *testing.T, res *Result, _ *corev1.Pod) {
				wantItem(t, res, "volumes", "model-cache", Kept)
				wantItem(t, res, "volumeMounts", "/models", Kept)
			}},
		{"an enforced mount replaces /dev/shm/ in place", "shm-mount-enforced", newPod(withVolume(pvc("own", "c")), withMount("own", "/dev/shm/")),
			func(t *testing.T, _ *Result, p *corev1.Pod) {
				if n := len(p.Spec.Containers[0].VolumeMounts); n != 1 || mountAt(&p.Spec.Containers[0], "/dev/shm") != "dshm" {
					t.Fatalf("mounts %+v", p.Spec.Containers[0].VolumeMounts)
				}
			}},
	})
}

// TestOptOutValues: a documented set, trimmed and case-insensitive; anything else is refused.
func TestOptOutValues(t *testing.T) {
	set := ruleSet(t)
	for _, v := range []string{"false", " False ", "NO", "off", "0", "disabled"} {
		res, _, err := mutate(t, set, newPod(withProfile("env"), withAnnotation(testKeys.Inject, v)))
		if err != nil || res.Profile != nil || !strings.Contains(res.Reason, "opted out") {
			t.Errorf("%q: want opted out, got %v %+v", v, err, res)
		}
	}
	for _, v := range []string{"true", "Yes", " on", "1", "enabled"} {
		res, _, err := mutate(t, set, newPod(withProfile("env"), withAnnotation(testKeys.Inject, v)))
		if err != nil || res.Profile == nil {
			t.Errorf("%q: want the profile applied, got %v %+v", v, err, res)
		}
	}
	for _, v := range []string{"maybe", "", "fasle", strings.Repeat("x", 10000)} {
		_, _, err := mutate(t, set, newPod(withProfile("env"), withAnnotation(testKeys.Inject, v)))
		var r *RefusedError
		if !errors.As(err, &r) || !strings.Contains(r.Reason, "false/no/off/0/disabled") || len(r.Reason) > 200 {
			t.Errorf("%q: want a short refusal naming the accepted values, got %v", v[:min(len(v), 20)], err)
		}
	}
	// The profile key may be a label, so the opt-out may be one too: never ignored.
	for _, v := range []string{"false", "disabled"} {
		res, _, err := mutate(t, set, newPod(withProfile("env"), withLabel(testKeys.Inject, v)))
		if err != nil || res.Profile != nil || !strings.Contains(res.Reason, "opted out with label") {
			t.Errorf("label %q: want opted out, got %v %+v", v, err, res)
		}
	}
	if _, _, err := mutate(t, set, newPod(withProfile("env"), withLabel(testKeys.Inject, "maybe"))); err == nil {
		t.Error("label maybe: want a refusal")
	}
	if res, _, err := mutate(t, set, newPod(withProfile("env"), withAnnotation(testKeys.Inject, "true"), withLabel(testKeys.Inject, "false"))); err != nil || res.Profile != nil {
		t.Errorf("opt-in annotation, opt-out label: the opt-out wins, got %v %+v", err, res)
	}
}

// TestHostNamespacePods: a hostIPC Pod keeps the node's /dev/shm; a hostNetwork Pod gets no
// interface names, which would name the node's interfaces.
func TestHostNamespacePods(t *testing.T) {
	runRules(t, []ruleCase{
		{"hostIPC: no memory /dev/shm, and the explain row says why", "mounts", newPod(func(p *corev1.Pod) { p.Spec.HostIPC = true }),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if volumeNamed(p, "dshm") != nil || mountAt(&p.Spec.Containers[0], "/dev/shm") != "" {
					t.Fatalf("shm added on a hostIPC Pod: %+v", p.Spec)
				}
				if it := wantItem(t, res, "volumes", "dshm", NotUsed); !strings.Contains(it.Reason, "hostIPC") {
					t.Fatalf("reason %q", it.Reason)
				}
				wantItem(t, res, "volumeMounts", "/models", Applied)
			}},
		{"hostNetwork: no NCCL_SOCKET_IFNAME, the rest applied", "env", newPod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if _, ok := envOf(&p.Spec.Containers[0], "NCCL_SOCKET_IFNAME"); ok {
					t.Fatal("interface name set on a hostNetwork Pod")
				}
				if it := wantItem(t, res, "env", "NCCL_SOCKET_IFNAME", NotUsed); !strings.Contains(it.Reason, "hostNetwork") {
					t.Fatalf("reason %q", it.Reason)
				}
				wantItem(t, res, "env", "NCCL_DEBUG", Applied)
			}},
		{"hostIPC: a profile's own /dev/shm mount is not used either, even enforced", "explicit-shm",
			newPod(func(p *corev1.Pod) { p.Spec.HostIPC = true }),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if n := mountAt(&p.Spec.Containers[0], "/dev/shm"); n != "" {
					t.Fatalf("%s mounted over the node's /dev/shm on a hostIPC Pod", n)
				}
				if it := wantItem(t, res, "volumeMounts", "/dev/shm/", NotUsed); !strings.Contains(it.Reason, "hostIPC") {
					t.Fatalf("reason %q", it.Reason)
				}
			}},
		{"hostNetwork: an enforced interface name never replaces the Pod's own", "env-all-enforced",
			newPod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }, withEnv("NCCL_SOCKET_IFNAME", "bond0", "NCCL_DEBUG", "INFO")),
			func(t *testing.T, res *Result, p *corev1.Pod) {
				if v, _ := envOf(&p.Spec.Containers[0], "NCCL_SOCKET_IFNAME"); v != "bond0" {
					t.Fatalf("NCCL_SOCKET_IFNAME = %q on a hostNetwork Pod, want the Pod's bond0", v)
				}
				wantItem(t, res, "env", "NCCL_SOCKET_IFNAME", NotUsed)
				wantItem(t, res, "env", "NCCL_DEBUG", Enforced)
			}},
		{"hostNetwork: the Pod's own interface name is no conflict, so no warning", "env",
			newPod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }, withEnv("NCCL_SOCKET_IFNAME", "bond0")),
			func(t *testing.T, res *Result, _ *corev1.Pod) {
				wantItem(t, res, "env", "NCCL_SOCKET_IFNAME", NotUsed)
				if ws := res.Warnings(); len(ws) != 0 {
					t.Fatalf("warnings %q", ws)
				}
			}},
	})
}

// TestWarningsNeverCarryPodValues: a warning names the setting and who won; the value (it may
// be a secret) appears only in the explain detail.
func TestWarningsNeverCarryPodValues(t *testing.T) {
	set := ruleSet(t)
	res, _, err := mutate(t, set, newPod(withProfile("env"), withEnv("NCCL_DEBUG", "s3cr3t-token"), withEnvFrom("PY")))
	if err != nil {
		t.Fatal(err)
	}
	ws := strings.Join(res.Warnings(), "\n")
	if strings.Contains(ws, "s3cr3t") || strings.Contains(ws, "app-config") || !strings.Contains(ws, `env: kept container "main" env NCCL_DEBUG`) {
		t.Fatalf("warnings: %s", ws)
	}
	if it := wantItem(t, res, "env", "NCCL_DEBUG", Skipped); !strings.Contains(it.Detail, "s3cr3t") {
		t.Fatalf("the explain detail should show the values: %q", it.Detail)
	}
}
