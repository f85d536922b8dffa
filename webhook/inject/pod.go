package inject

// Pod-level rules, in the order apply runs them: scalars, maps, tolerations, node affinity,
// volumes, and /dev/shm (after the containers, whose limits size it).

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ai-webhook/ai-webhook/webhook/jsonpatch"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// scalar decides a Pod-level string field; it reports whether the caller must store want.
// apiDefault is the value the API server fills in when the user sets none; it counts as unset.
func (m *mutation) scalar(path, name, have, want, apiDefault string) bool {
	switch {
	case want == "":
		return false
	case have == want:
		m.note("pod", name, "", Kept, want)
		return false
	case have == "":
		m.op(jsonpatch.Add(path, want))
		m.note("pod", name, "", Applied, want)
		return true
	case have == apiDefault:
		m.op(jsonpatch.Replace(path, want))
		m.note("pod", name, "", Applied, want+" (was the API default "+have+")")
		return true
	case m.conflict("pod", name, "", have, want):
		m.op(jsonpatch.Replace(path, want))
		return true
	}
	return false
}

// dropResolvedPriority removes the priority the API server resolved from the old class: the
// Priority admission plugin runs again after webhooks change a Pod and refuses a spec.priority
// that disagrees with the new class.
func (m *mutation) dropResolvedPriority() {
	if m.pod.Spec.Priority != nil {
		m.op(jsonpatch.Remove("/spec/priority"))
		m.pod.Spec.Priority = nil
	}
	if m.pod.Spec.PreemptionPolicy != nil {
		m.op(jsonpatch.Remove("/spec/preemptionPolicy"))
		m.pod.Spec.PreemptionPolicy = nil
	}
}

// dropOverhead removes the overhead the RuntimeClass admission plugin copied from the old
// class: it belongs to that class, and the plugin refuses a Pod whose overhead disagrees with
// its (new) RuntimeClass. Like spec.priority, it is recomputed from the class the Pod now names.
func (m *mutation) dropOverhead() {
	if len(m.pod.Spec.Overhead) > 0 { // an empty map is omitted from the JSON: nothing to remove
		m.op(jsonpatch.Remove("/spec/overhead"))
	}
	m.pod.Spec.Overhead = nil
}

// mapEntries merges string maps (labels, annotations, nodeSelector) key by key, sorted.
func (m *mutation) mapEntries(path string, have *map[string]string, field string, want map[string]string) {
	for _, k := range sortedKeys(want) {
		m.mapEntry(path, have, field, k, want[k], false)
	}
}

func (m *mutation) mapEntry(path string, have *map[string]string, field, k, v string, ours bool) {
	cur, ok := (*have)[k]
	switch {
	case ok && cur == v:
		if !ours {
			m.note("pod", field, k, Kept, v)
		}
		return
	case len(*have) == 0: // an empty map is omitted from the JSON: add the whole map
		m.op(jsonpatch.Add(path, map[string]string{k: v}))
		*have = map[string]string{}
	case !ok:
		m.op(jsonpatch.Add(path+"/"+jsonpatch.Escape(k), v))
	case ours || m.conflict("pod", field, k, cur, v):
		m.op(jsonpatch.Replace(path+"/"+jsonpatch.Escape(k), v))
	default:
		return
	}
	if !ok && !ours {
		m.note("pod", field, k, Applied, v)
	}
	(*have)[k] = v
}

// stamp records which version of which profile was applied; it is ours, so it always wins.
func (m *mutation) stamp(key string) {
	m.mapEntry("/metadata/annotations", &m.pod.Annotations, "annotations", key, m.p.Stamp, true)
}

func (m *mutation) tolerations(want []corev1.Toleration) {
	for _, t := range want {
		same, idx := false, -1 // an identical toleration; else one for the same taint
		for i, h := range m.pod.Spec.Tolerations {
			if equality.Semantic.DeepEqual(h, t) {
				same = true
				break
			}
			if idx < 0 && h.Key == t.Key && h.Effect == t.Effect {
				idx = i
			}
		}
		switch {
		case same:
			m.note("pod", "tolerations", t.Key, Kept, describeToleration(t))
		case idx >= 0:
			if m.conflict("pod", "tolerations", t.Key, describeToleration(m.pod.Spec.Tolerations[idx]), describeToleration(t)) {
				m.op(jsonpatch.Replace(fmt.Sprintf("/spec/tolerations/%d", idx), t))
				m.pod.Spec.Tolerations[idx] = t
			}
		default:
			m.appendTo("/spec/tolerations", len(m.pod.Spec.Tolerations), t)
			m.pod.Spec.Tolerations = append(m.pod.Spec.Tolerations, t)
			m.note("pod", "tolerations", t.Key, Applied, describeToleration(t))
		}
	}
}

func describeToleration(t corev1.Toleration) string {
	s := t.Key + " " + string(t.Operator)
	if t.Value != "" {
		s += " " + t.Value
	}
	if t.Effect != "" {
		s += " " + string(t.Effect)
	}
	return s
}

const requiredTermsPath = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"

// requiredAffinity ANDs the profile's requirements into every required term of the Pod, so the
// profile narrows placement and never widens it. A term that already constrains a key keeps it.
func (m *mutation) requiredAffinity(want []corev1.NodeSelectorRequirement) {
	if len(want) == 0 {
		return
	}
	spec := &m.pod.Spec
	terms := func() *corev1.NodeSelector {
		if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil {
			return nil
		}
		return spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}()
	if terms == nil || len(terms.NodeSelectorTerms) == 0 {
		sel := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: append([]corev1.NodeSelectorRequirement(nil), want...)}}}
		m.addNodeAffinityMember("requiredDuringSchedulingIgnoredDuringExecution", func(na *corev1.NodeAffinity) any {
			na.RequiredDuringSchedulingIgnoredDuringExecution = sel
			return sel
		})
		for _, r := range want {
			m.note("pod", "affinity.required", r.Key, Applied, describeRequirement(r))
		}
		return
	}
	for ti := range terms.NodeSelectorTerms {
		term := &terms.NodeSelectorTerms[ti]
		path := fmt.Sprintf("%s/nodeSelectorTerms/%d/matchExpressions", requiredTermsPath, ti)
		for _, r := range want {
			idx := -1
			for i, h := range term.MatchExpressions {
				if h.Key == r.Key {
					idx = i
					break
				}
			}
			switch {
			case idx >= 0 && equality.Semantic.DeepEqual(term.MatchExpressions[idx], r):
				m.note("pod", "affinity.required", r.Key, Kept, describeRequirement(r))
			case idx >= 0:
				m.pass("pod", "affinity.required", r.Key, Skipped, "", fmt.Sprintf("pod term %d: %s, profile: %s",
					ti, describeRequirement(term.MatchExpressions[idx]), describeRequirement(r)))
			default:
				m.appendTo(path, len(term.MatchExpressions), r)
				term.MatchExpressions = append(term.MatchExpressions, r)
				m.note("pod", "affinity.required", r.Key, Applied, describeRequirement(r))
			}
		}
	}
}

// addNodeAffinityMember sets one member of the Pod's node affinity, adding spec.affinity and
// its nodeAffinity first when absent (JSON Patch cannot add into a missing parent). set stores
// the member and returns its value. Operation values are copies: later decisions change the
// Pod's structs, and a patch must say what was decided at that step.
func (m *mutation) addNodeAffinityMember(member string, set func(*corev1.NodeAffinity) any) {
	spec := &m.pod.Spec
	switch {
	case spec.Affinity == nil:
		spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}
		set(spec.Affinity.NodeAffinity)
		m.op(jsonpatch.Add("/spec/affinity", spec.Affinity.DeepCopy()))
	case spec.Affinity.NodeAffinity == nil:
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
		set(spec.Affinity.NodeAffinity)
		m.op(jsonpatch.Add("/spec/affinity/nodeAffinity", spec.Affinity.NodeAffinity.DeepCopy()))
	default:
		v := set(spec.Affinity.NodeAffinity)
		b, _ := json.Marshal(v) // a snapshot of the member, for the same reason
		m.op(jsonpatch.Add("/spec/affinity/nodeAffinity/"+member, json.RawMessage(b)))
	}
}

func describeRequirement(r corev1.NodeSelectorRequirement) string {
	return fmt.Sprintf("%s %s %v", r.Key, r.Operator, r.Values)
}

func (m *mutation) preferredAffinity(want []corev1.PreferredSchedulingTerm) {
	for _, t := range want {
		spec := &m.pod.Spec
		var have []corev1.PreferredSchedulingTerm
		if spec.Affinity != nil && spec.Affinity.NodeAffinity != nil {
			have = spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		}
		key := preferredKey(t)
		found := false
		for _, h := range have {
			if equality.Semantic.DeepEqual(h, t) {
				found = true
				break
			}
		}
		if found {
			m.note("pod", "affinity.preferred", key, Kept, "")
			continue
		}
		if len(have) > 0 {
			m.appendTo("/spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution", len(have), t)
			spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(have, t)
		} else {
			m.addNodeAffinityMember("preferredDuringSchedulingIgnoredDuringExecution", func(na *corev1.NodeAffinity) any {
				na.PreferredDuringSchedulingIgnoredDuringExecution = []corev1.PreferredSchedulingTerm{t}
				return na.PreferredDuringSchedulingIgnoredDuringExecution
			})
		}
		m.note("pod", "affinity.preferred", key, Applied, "weight "+strconv.Itoa(int(t.Weight)))
	}
}

func preferredKey(t corev1.PreferredSchedulingTerm) string {
	if len(t.Preference.MatchExpressions) > 0 {
		return t.Preference.MatchExpressions[0].Key
	}
	if len(t.Preference.MatchFields) > 0 {
		return t.Preference.MatchFields[0].Key
	}
	return ""
}

// volume adds one of the profile's volumes, unless the Pod has its own of that name.
func (m *mutation) volume(v corev1.Volume) {
	idx := m.volumeIndex(v.Name)
	switch {
	case idx < 0:
		m.appendTo("/spec/volumes", len(m.pod.Spec.Volumes), v)
		m.pod.Spec.Volumes = append(m.pod.Spec.Volumes, v)
		m.note("pod", "volumes", v.Name, Applied, "")
	case !equality.Semantic.DeepEqual(m.pod.Spec.Volumes[idx], v):
		m.replaceVolume(idx, v, "another source", "the profile's")
	default:
		m.ownVolume(v.Name, m.profilePaths(v.Name), "")
	}
}

// ownVolume settles a Pod volume that looks like the profile's: it is the profile's (kept,
// e.g. from an earlier call) unless a container mounts it at a path where the profile does not
// mount it. Then the user chose that name for their own use, and the profile keeps off it.
func (m *mutation) ownVolume(name string, paths []string, kept string) {
	if !m.p.Enforced("volumes", name) { // enforced: the name is the profile's, wherever mounted
		for _, t := range allContainers(m.pod) {
			for _, vm := range t.c.VolumeMounts {
				if vm.Name == name && !slices.Contains(paths, path.Clean(vm.MountPath)) {
					m.markForeign(name)
					m.pass("pod", "volumes", name, Skipped, "the pod uses this name for its own volume",
						t.where+" mounts it at "+vm.MountPath)
					return
				}
			}
		}
	}
	m.note("pod", "volumes", name, Kept, kept)
}

// profilePaths are the cleaned paths where the profile mounts the named volume.
func (m *mutation) profilePaths(name string) []string {
	var out []string
	for _, vm := range m.p.Container.VolumeMounts {
		if vm.Name == name {
			out = append(out, path.Clean(vm.MountPath))
		}
	}
	return out
}

// replaceVolume settles a clash over a volume name: the profile's volume replaces the Pod's
// when enforced; otherwise the Pod keeps its own and the profile's mounts of it are skipped.
func (m *mutation) replaceVolume(idx int, v corev1.Volume, have, want string) {
	if m.conflict("pod", "volumes", v.Name, have, want) {
		m.op(jsonpatch.Replace(fmt.Sprintf("/spec/volumes/%d", idx), v))
		m.pod.Spec.Volumes[idx] = v
		return
	}
	m.markForeign(v.Name)
}

func (m *mutation) markForeign(name string) {
	if m.foreign == nil {
		m.foreign = map[string]bool{}
	}
	m.foreign[name] = true
}

// shm gives the targeted containers a memory-backed /dev/shm. The mounts are decided first,
// then the volume they need (an enforced mount may replace the Pod's own /dev/shm mount, and
// must never point at a volume the Pod lacks), sized from the memory limits of the containers
// that mount it as they are after the profile's own limits.
func (m *mutation) shm(shm *profile.Shm, tgts []target) {
	if m.pod.Spec.HostIPC {
		m.pass("pod", "volumes", shm.VolumeName, NotUsed,
			"hostIPC: the Pod shares the node's "+shm.MountPath+", which a memory volume would hide", "")
		return
	}
	vm := corev1.VolumeMount{Name: shm.VolumeName, MountPath: shm.MountPath}
	idx := m.volumeIndex(shm.VolumeName)
	replace := false // the Pod's own volume of that name gives way (volumes enforced)
	switch {
	case idx < 0:
	case isMemoryEmptyDir(&m.pod.Spec.Volumes[idx]):
		// Already memory-backed (ours from an earlier call, or the user's own /dev/shm): its
		// size stays, so a reinvocation never resizes what the first call set.
		m.ownVolume(shm.VolumeName, []string{path.Clean(shm.MountPath)}, "already memory-backed")
	case m.p.Enforced("volumes", shm.VolumeName):
		replace = true
	default:
		m.pass("pod", "volumes", shm.VolumeName, Skipped, "", "pod: another source, profile: memory-backed emptyDir")
		m.markForeign(shm.VolumeName)
	}
	var users []*corev1.Container
	for _, t := range tgts {
		if m.mount(t, vm, idx < 0) {
			users = append(users, t.c)
		}
	}
	if len(users) == 0 || (idx >= 0 && !replace) {
		return
	}
	size, detail := m.shmSize(shm, users)
	ed := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
	if !size.IsZero() {
		ed.SizeLimit = &size
	}
	v := corev1.Volume{Name: shm.VolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: ed}}
	if replace {
		m.op(jsonpatch.Replace(fmt.Sprintf("/spec/volumes/%d", idx), v))
		m.pod.Spec.Volumes[idx] = v
		m.note("pod", "volumes", shm.VolumeName, Enforced, "was another source, now memory-backed, "+detail)
		return
	}
	m.appendTo("/spec/volumes", len(m.pod.Spec.Volumes), v)
	m.pod.Spec.Volumes = append(m.pod.Spec.Volumes, v)
	m.note("pod", "volumes", shm.VolumeName, Applied, "memory-backed, "+detail)
}

// shmSize is the fraction of the largest memory limit among the containers that mount /dev/shm,
// bounded by the Pod-level memory limit (spec.resources), which the kubelet also applies to
// memory-backed volumes; without either, the profile's default. A limit of 0 sets no limit.
func (m *mutation) shmSize(shm *profile.Shm, users []*corev1.Container) (resource.Quantity, string) {
	var largest *resource.Quantity
	from := ""
	for _, c := range users {
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && !q.IsZero() && (largest == nil || q.Cmp(*largest) > 0) {
			largest, from = &q, "memory limit"
		}
	}
	if r := m.pod.Spec.Resources; r != nil {
		if q, ok := r.Limits[corev1.ResourceMemory]; ok && !q.IsZero() && (largest == nil || q.Cmp(*largest) < 0) {
			largest, from = &q, "pod-level memory limit"
		}
	}
	if largest == nil {
		return shm.Default, "default size " + shm.Default.String() + " (no memory limit)"
	}
	return fractionOf(*largest, shm.Fraction), fmt.Sprintf("%g of %s %s", shm.Fraction, from, largest.String())
}

// fractionOf is f x q bytes, at least one byte: a zero sizeLimit would mean no bound at all.
// The API accepts quantities past 2^63 (100E), where Value() gives 0; they are sized in floats.
func fractionOf(q resource.Quantity, f float64) resource.Quantity {
	if q.CmpInt64(math.MaxInt64/2) < 0 {
		return *resource.NewQuantity(max(int64(float64(q.Value())*f), 1), resource.BinarySI)
	}
	return resource.MustParse(strconv.FormatFloat(math.Ceil(q.AsApproximateFloat64()*f), 'f', 0, 64))
}

func isMemoryEmptyDir(v *corev1.Volume) bool {
	return v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory
}
