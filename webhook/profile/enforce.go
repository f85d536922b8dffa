package profile

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// enforceField is one field a profile may list under enforce: the one place that says which
// fields exist, whether a key narrows them, and what the profile sets for them.
type enforceField struct {
	name string
	// key names what narrows an entry ("env:NCCL_DEBUG"); empty when the field takes no key.
	key string
	// set lists the keys the profile sets for this field (derived settings included); for a
	// field without key, the one value when the profile sets it.
	set func(p *Profile) []string
}

var enforceable = []enforceField{
	{"runtimeClassName", "", func(p *Profile) []string { return nonEmpty(p.Pod.RuntimeClassName) }},
	{"schedulerName", "", func(p *Profile) []string { return nonEmpty(p.Pod.SchedulerName) }},
	{"priorityClassName", "", func(p *Profile) []string { return nonEmpty(p.Pod.PriorityClassName) }},
	{"labels", "key", func(p *Profile) []string { return slices.Collect(maps.Keys(p.Pod.Labels)) }},
	{"annotations", "key", func(p *Profile) []string { return slices.Collect(maps.Keys(p.Pod.Annotations)) }},
	{"nodeSelector", "key", func(p *Profile) []string { return slices.Collect(maps.Keys(p.Pod.NodeSelector)) }},
	{"tolerations", "key", func(p *Profile) []string {
		return mapped(p.Pod.Tolerations, func(t corev1.Toleration) string { return t.Key })
	}},
	{"volumes", "name", func(p *Profile) []string {
		names := mapped(p.Pod.Volumes, func(v corev1.Volume) string { return v.Name })
		if p.Derived.Shm != nil {
			names = append(names, p.Derived.Shm.VolumeName)
		}
		return names
	}},
	{"limits", "resource", func(p *Profile) []string {
		return mapped(slices.Collect(maps.Keys(p.Container.Limits)), func(r corev1.ResourceName) string { return string(r) })
	}},
	{"env", "NAME", func(p *Profile) []string {
		names := mapped(p.Container.Env, func(e corev1.EnvVar) string { return e.Name })
		if p.Derived.OMPNumThreadsFromCPU {
			names = append(names, EnvOMPNumThreads)
		}
		if p.Derived.HideGPUsFromNonGPUContainers {
			names = append(names, EnvNvidiaVisibleDevices)
		}
		return names
	}},
	{"volumeMounts", "mountPath", func(p *Profile) []string {
		paths := mapped(p.Container.VolumeMounts, func(m corev1.VolumeMount) string { return m.MountPath })
		if p.Derived.Shm != nil {
			paths = append(paths, p.Derived.Shm.MountPath)
		}
		return paths
	}},
}

// enforceFieldNamed returns the table entry for name.
func enforceFieldNamed(name string) (enforceField, bool) {
	i := slices.IndexFunc(enforceable, func(f enforceField) bool { return f.name == name })
	if i < 0 {
		return enforceField{}, false
	}
	return enforceable[i], true
}

// EnforceableFields names every field a profile may list under enforce (keys aside), in table
// order: the control-plane corpus builds its "enforce everything" profiles from it.
func EnforceableFields() []string {
	return mapped(enforceable, func(f enforceField) string { return f.name })
}

// enforceableNames lists the accepted enforce entries for error messages, e.g. "env[:NAME]".
func enforceableNames() []string {
	return mapped(enforceable, func(f enforceField) string {
		if f.key == "" {
			return f.name
		}
		return f.name + "[:" + f.key + "]"
	})
}

// sets reports whether the profile sets the field, and the key when one is given.
func (f enforceField) sets(p *Profile, key string) bool {
	set := f.set(p)
	if key == "" {
		return len(set) > 0
	}
	return slices.Contains(set, key)
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func mapped[T any](items []T, f func(T) string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, f(it))
	}
	return out
}
