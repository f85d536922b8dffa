package inject

// Container-level rules, run for each targeted container: limits, env, derived env, mounts.

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ai-webhook/ai-webhook/webhook/jsonpatch"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// container applies the container settings and the per-container derived values. Limits come
// first: OMP_NUM_THREADS and the /dev/shm size are derived from the limits as the profile leaves
// them.
func (m *mutation) container(t target) {
	cs := &m.p.Container
	for _, c := range m.claims {
		m.containerClaim(t, c)
	}
	for _, r := range sortedKeys(cs.Limits) {
		m.limit(t, r, cs.Limits[r])
	}
	for _, e := range cs.Env {
		m.env(t, e)
	}
	if m.p.Derived.OMPNumThreadsFromCPU {
		m.ompNumThreads(t)
	}
	for _, vm := range cs.VolumeMounts {
		m.mount(t, vm, false)
	}
}

// limit sets an extended-resource limit and, when the Pod has none, the equal request:
// extended resources cannot be overcommitted, so request and limit must agree.
func (m *mutation) limit(t target, r corev1.ResourceName, q resource.Quantity) {
	res := &t.c.Resources
	key := string(r)
	have, hasLimit := res.Limits[r]
	req, hasRequest := res.Requests[r]
	if hasLimit && have.Cmp(q) == 0 {
		m.note(t.where, "limits", key, Kept, q.String())
		return
	}
	if why := m.podLevelRoom(r); why != "" {
		// Even when enforced: the API server would refuse the Pod.
		m.pass(t.where, "limits", key, Skipped, why, q.String())
		return
	}
	switch {
	case hasLimit:
		if !m.conflict(t.where, "limits", key, have.String(), q.String()) {
			return
		}
		m.op(jsonpatch.Replace(t.path+"/resources/limits/"+jsonpatch.Escape(key), q))
		res.Limits[r] = q
		// A request equal to the old limit (the API default from the limit, or the Pod's
		// Guaranteed QoS) follows the new one.
		if hasRequest && req.Cmp(q) != 0 && (req.Cmp(have) == 0 || requestMustChange(r, req, q)) {
			m.op(jsonpatch.Replace(t.path+"/resources/requests/"+jsonpatch.Escape(key), q))
			res.Requests[r] = q
		}
		return
	case !hasRequest && isGPUResource(r, m.p.GPUResource) && requestsGPU(t.c, m.p.GPUResource) && !m.p.Enforced("limits", key):
		// The container asked for its GPU in another form (a MIG slice, a shared GPU): adding
		// a whole one beside it would ask the node for two devices.
		m.pass(t.where, "limits", key, Skipped, "the container requests another GPU resource", gpuResources(t.c, m.p.GPUResource))
		return
	case hasRequest && req.Cmp(q) != 0:
		// The Pod asked for another amount through its request: that is the user's value.
		if !m.conflict(t.where, "limits", key, "no limit (request "+req.String()+")", q.String()) {
			return
		}
		if requestMustChange(r, req, q) {
			m.op(jsonpatch.Replace(t.path+"/resources/requests/"+jsonpatch.Escape(key), q))
			res.Requests[r] = q
		}
	}
	m.mapAdd(t.path+"/resources", &res.Limits, "limits", r, q, len(res.Requests) == 0 && len(res.Claims) == 0)
	if _, ok := res.Requests[r]; !ok {
		m.mapAdd(t.path+"/resources", &res.Requests, "requests", r, q, false)
	}
	if !hasLimit {
		m.note(t.where, "limits", key, Applied, q.String())
	}
}

// requestMustChange reports whether an enforced limit q of r must also replace the Pod's
// request req: enforce owns the limit, not the request. A cpu, memory or ephemeral-storage
// request below its limit is the Pod's choice of QoS and scheduling; above it the API server
// refuses the Pod. Other resources (extended, hugepages) need request = limit.
func requestMustChange(r corev1.ResourceName, req, q resource.Quantity) bool {
	switch r {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return req.Cmp(q) > 0
	}
	return req.Cmp(q) != 0
}

// podLevelRoom says why the profile's limit of r is not used on a Pod that budgets r at the
// Pod level (spec.resources), empty otherwise. The API server refuses a container limit above
// the Pod's limit and container requests summing above the Pod's request; rather than fit a
// limit into what other containers leave (which would depend on the order of containers), the
// Pod's own budget wins, enforced or not.
func (m *mutation) podLevelRoom(r corev1.ResourceName) string {
	if pr := m.pod.Spec.Resources; pr != nil {
		_, limited := pr.Limits[r]
		_, requested := pr.Requests[r]
		if limited || requested {
			return "the pod sets a pod-level " + string(r)
		}
	}
	return ""
}

// gpuResources names the GPU resources a container requests, for --explain.
func gpuResources(c *corev1.Container, gpu corev1.ResourceName) string {
	var names []string
	for _, l := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
		for _, r := range sortedKeys(l) {
			if q := l[r]; !q.IsZero() && isGPUResource(r, gpu) && !slices.Contains(names, string(r)) {
				names = append(names, string(r))
			}
		}
	}
	return strings.Join(names, ", ")
}

// ompNumThreads sets OMP_NUM_THREADS to the whole CPUs of the container's CPU limit or, without
// one, of the Pod-level CPU limit (spec.resources), which then bounds the container.
func (m *mutation) ompNumThreads(t target) {
	cpu, from := t.c.Resources.Limits[corev1.ResourceCPU], "cpu limit"
	if cpu.IsZero() && m.pod.Spec.Resources != nil {
		cpu, from = m.pod.Spec.Resources.Limits[corev1.ResourceCPU], "pod-level cpu limit"
	}
	if cpu.IsZero() {
		m.pass(t.where, "env", profile.EnvOMPNumThreads, NotUsed, "no cpu limit", "")
		return
	}
	// Whole cores only: OpenMP threads beyond the CFS quota just contend.
	n := max(cpu.MilliValue()/1000, 1)
	m.envFrom(t, corev1.EnvVar{Name: profile.EnvOMPNumThreads, Value: strconv.FormatInt(n, 10)}, "from "+from+" "+cpu.String())
}

// hideGPUs sets NVIDIA_VISIBLE_DEVICES=void on every container (init and sidecars included)
// that requests no GPU once the profile's limits are in place. CUDA images default to "all",
// which exposes every GPU of the node through the NVIDIA runtime, whether the Pod landed there
// because it requests a GPU or because the profile chose the runtime class or the node.
func (m *mutation) hideGPUs() {
	for _, t := range allContainers(m.pod) {
		if !requestsGPU(t.c, m.p.GPUResource) {
			m.env(t, corev1.EnvVar{Name: profile.EnvNvidiaVisibleDevices, Value: "void"})
		}
	}
}

// env adds one variable unless the container already defines that name.
func (m *mutation) env(t target, e corev1.EnvVar) { m.envFrom(t, e, "") }

// envFrom is env with a note on where a derived value came from (for --explain).
func (m *mutation) envFrom(t target, e corev1.EnvVar, origin string) {
	// The runtime takes the last entry of a name: that is the one that counts.
	idx := -1
	for i := range t.c.Env {
		if t.c.Env[i].Name == e.Name {
			idx = i
		}
	}
	switch {
	case idx >= 0 && equality.Semantic.DeepEqual(t.c.Env[idx], e):
		m.note(t.where, "env", e.Name, Kept, describeEnv(e))
	case m.pod.Spec.HostNetwork && strings.HasSuffix(e.Name, "_SOCKET_IFNAME"):
		// Before the Pod's own entry, enforced or not: only the Pod can know the node's names.
		m.pass(t.where, "env", e.Name, NotUsed, "hostNetwork: the node's interfaces, not the Pod's", describeEnv(e))
	case idx >= 0:
		if m.conflict(t.where, "env", e.Name, describeEnv(t.c.Env[idx]), describeEnv(e)) {
			m.op(jsonpatch.Replace(fmt.Sprintf("%s/env/%d", t.path, idx), e))
			t.c.Env[idx] = e
		}
	default:
		src := envFromSource(t.c, e.Name)
		switch {
		case src != "" && m.p.Enforced("env", e.Name):
			m.note(t.where, "env", e.Name, Enforced, describeEnv(e)+" over "+src)
		case src != "":
			// An explicit env entry wins over envFrom: adding one would override the user's
			// ConfigMap or Secret, whose keys the webhook does not read.
			m.pass(t.where, "env", e.Name, Skipped, "envFrom may set it", src)
			return
		default:
			m.note(t.where, "env", e.Name, Applied, strings.TrimSpace(describeEnv(e)+" "+origin))
		}
		m.appendTo(t.path+"/env", len(t.c.Env), e)
		t.c.Env = append(t.c.Env, e)
	}
}

// envFromSource names the container's first envFrom source that can provide name: one
// without a prefix, or whose prefix name starts with. Empty when none can.
func envFromSource(c *corev1.Container, name string) string {
	for _, f := range c.EnvFrom {
		if !strings.HasPrefix(name, f.Prefix) {
			continue
		}
		switch {
		case f.ConfigMapRef != nil:
			return "envFrom configMap " + f.ConfigMapRef.Name
		case f.SecretRef != nil:
			return "envFrom secret " + f.SecretRef.Name
		default:
			return "envFrom"
		}
	}
	return ""
}

func describeEnv(e corev1.EnvVar) string {
	if e.ValueFrom != nil {
		return "valueFrom"
	}
	return strconv.Quote(e.Value)
}

// mount adds a volume mount unless the container already mounts something at that path, and
// reports whether the container mounts the volume afterwards. The mount must name a volume the
// profile owns in this Pod, enforced or not: a mount of a volume the Pod lacks makes the API
// server refuse the Pod, and one of the Pod's own volume under the profile's name would hand
// the user's data to the profile's path. coming says the volume is added after the mounts.
func (m *mutation) mount(t target, vm corev1.VolumeMount, coming bool) bool {
	idx := mountIndex(t.c, vm.MountPath)
	switch {
	case idx >= 0 && sameMount(t.c.VolumeMounts[idx], vm):
		m.note(t.where, "volumeMounts", vm.MountPath, Kept, vm.Name)
		return true
	case m.pod.Spec.HostIPC && path.Clean(vm.MountPath) == hostIPCShm:
		// Whatever the volume, enforced or not: the Pod shares the node's /dev/shm on purpose.
		m.pass(t.where, "volumeMounts", vm.MountPath, NotUsed, "hostIPC: the Pod shares the node's "+hostIPCShm+", which a mount would hide", vm.Name)
	case !coming && m.volumeIndex(vm.Name) < 0:
		m.pass(t.where, "volumeMounts", vm.MountPath, Skipped, "the pod has no volume "+vm.Name, "")
	case m.foreign[vm.Name]:
		m.pass(t.where, "volumeMounts", vm.MountPath, Skipped, "volume "+vm.Name+" is the pod's own", "")
	case idx >= 0:
		if !m.conflict(t.where, "volumeMounts", vm.MountPath, t.c.VolumeMounts[idx].Name, vm.Name) {
			return t.c.VolumeMounts[idx].Name == vm.Name
		}
		m.op(jsonpatch.Replace(fmt.Sprintf("%s/volumeMounts/%d", t.path, idx), vm))
		t.c.VolumeMounts[idx] = vm
		return true
	default:
		m.appendTo(t.path+"/volumeMounts", len(t.c.VolumeMounts), vm)
		t.c.VolumeMounts = append(t.c.VolumeMounts, vm)
		m.note(t.where, "volumeMounts", vm.MountPath, Applied, vm.Name)
		return true
	}
	return false
}

// hostIPCShm is where a hostIPC Pod sees the node's POSIX shared memory.
const hostIPCShm = "/dev/shm"

// sameMount compares mounts with their paths cleaned.
func sameMount(a, b corev1.VolumeMount) bool {
	a.MountPath, b.MountPath = path.Clean(a.MountPath), path.Clean(b.MountPath)
	return equality.Semantic.DeepEqual(a, b)
}
