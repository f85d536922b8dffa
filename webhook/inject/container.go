package inject

// Container-level rules, run for each targeted container: limits, env, derived env, mounts.

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ai-webhook/ai-webhook/webhook/jsonpatch"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// container applies the container settings and the per-container derived values.
func (m *mutation) container(t target) {
	cs := &m.p.Container
	for _, r := range sortedKeys(cs.Limits) {
		m.limit(t, r, cs.Limits[r])
	}
	for _, e := range cs.Env {
		m.env(t, e)
	}
	if m.p.Derived.OMPNumThreadsFromCPU {
		if cpu, ok := t.c.Resources.Limits[corev1.ResourceCPU]; ok && !cpu.IsZero() {
			// Whole cores only: OpenMP threads beyond the CFS quota just contend.
			n := max(cpu.MilliValue()/1000, 1)
			m.env(t, corev1.EnvVar{Name: profile.EnvOMPNumThreads, Value: strconv.FormatInt(n, 10)})
		} else {
			m.note(t.where, "env", profile.EnvOMPNumThreads, NotUsed, "no cpu limit")
		}
	}
	for _, vm := range cs.VolumeMounts {
		m.mount(t, vm)
	}
	if shm := m.p.Derived.Shm; shm != nil {
		m.mount(t, corev1.VolumeMount{Name: shm.VolumeName, MountPath: shm.MountPath})
	}
}

// limit sets an extended-resource limit and, when the Pod has none, the equal request:
// extended resources cannot be overcommitted, so request and limit must agree.
func (m *mutation) limit(t target, r corev1.ResourceName, q resource.Quantity) {
	res := &t.c.Resources
	key := string(r)
	have, hasLimit := res.Limits[r]
	req, hasRequest := res.Requests[r]
	switch {
	case hasLimit && have.Cmp(q) == 0:
		m.note(t.where, "limits", key, Kept, q.String())
		return
	case hasLimit:
		if !m.conflict(t.where, "limits", key, have.String(), q.String()) {
			return
		}
		m.op(jsonpatch.Replace(t.path+"/resources/limits/"+jsonpatch.Escape(key), q))
		res.Limits[r] = q
		if hasRequest && req.Cmp(q) != 0 {
			m.op(jsonpatch.Replace(t.path+"/resources/requests/"+jsonpatch.Escape(key), q))
			res.Requests[r] = q
		}
		return
	case hasRequest && req.Cmp(q) != 0:
		// The Pod asked for another amount through its request: that is the user's value.
		if !m.conflict(t.where, "limits", key, "request "+req.String(), q.String()) {
			return
		}
		m.op(jsonpatch.Replace(t.path+"/resources/requests/"+jsonpatch.Escape(key), q))
		res.Requests[r] = q
	}
	m.mapAdd(t.path+"/resources", &res.Limits, "limits", r, q, len(res.Requests) == 0 && len(res.Claims) == 0)
	if _, ok := res.Requests[r]; !ok {
		m.mapAdd(t.path+"/resources", &res.Requests, "requests", r, q, false)
	}
	if !hasLimit {
		m.note(t.where, "limits", key, Applied, q.String())
	}
}

// env adds one variable unless the container already defines that name.
func (m *mutation) env(t target, e corev1.EnvVar) {
	idx := -1
	for i := range t.c.Env {
		if t.c.Env[i].Name == e.Name {
			idx = i
			break
		}
	}
	switch {
	case idx < 0:
		m.appendTo(t.path+"/env", len(t.c.Env), e)
		t.c.Env = append(t.c.Env, e)
		m.note(t.where, "env", e.Name, Applied, describeEnv(e))
	case equality.Semantic.DeepEqual(t.c.Env[idx], e):
		m.note(t.where, "env", e.Name, Kept, describeEnv(e))
	case m.conflict(t.where, "env", e.Name, describeEnv(t.c.Env[idx]), describeEnv(e)):
		m.op(jsonpatch.Replace(fmt.Sprintf("%s/env/%d", t.path, idx), e))
		t.c.Env[idx] = e
	}
}

func describeEnv(e corev1.EnvVar) string {
	if e.ValueFrom != nil {
		return "valueFrom"
	}
	return strconv.Quote(e.Value)
}

// mount adds a volume mount unless the container already mounts something at that path. A
// mount of a volume the Pod does not have would make the API server reject the Pod, so it is
// skipped with a warning instead.
func (m *mutation) mount(t target, vm corev1.VolumeMount) {
	idx := mountIndex(t.c, vm.MountPath)
	switch {
	case idx >= 0 && equality.Semantic.DeepEqual(t.c.VolumeMounts[idx], vm):
		m.note(t.where, "volumeMounts", vm.MountPath, Kept, vm.Name)
	case idx >= 0:
		if m.conflict(t.where, "volumeMounts", vm.MountPath, t.c.VolumeMounts[idx].Name, vm.Name) {
			m.op(jsonpatch.Replace(fmt.Sprintf("%s/volumeMounts/%d", t.path, idx), vm))
			t.c.VolumeMounts[idx] = vm
		}
	case m.volumeIndex(vm.Name) < 0:
		m.note(t.where, "volumeMounts", vm.MountPath, Skipped, "the pod has no volume "+vm.Name)
	case m.foreign[vm.Name]:
		m.note(t.where, "volumeMounts", vm.MountPath, Skipped, "volume "+vm.Name+" is the pod's own, not the profile's")
	default:
		m.appendTo(t.path+"/volumeMounts", len(t.c.VolumeMounts), vm)
		t.c.VolumeMounts = append(t.c.VolumeMounts, vm)
		m.note(t.where, "volumeMounts", vm.MountPath, Applied, vm.Name)
	}
}
