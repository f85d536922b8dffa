package inject

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/jsonpatch"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// Action is what happened to one setting of the profile.
type Action string

const (
	Applied  Action = "applied"  // the Pod lacked it; the profile added it
	Kept     Action = "kept"     // the Pod already had exactly this value
	Skipped  Action = "skipped"  // the Pod set another value; the user wins
	Enforced Action = "enforced" // the Pod set another value; the profile enforces its own
	NotUsed  Action = "not used" // the setting does not apply to this Pod (e.g. no CPU limit)
)

// Item accounts for one setting: the answer to "why does my Pod look like this?".
type Item struct {
	Where  string `json:"where"`            // "pod" or e.g. `container "trainer"`
	Field  string `json:"field"`            // e.g. "env", "limits", "runtimeClassName"
	Key    string `json:"key,omitempty"`    // e.g. "NCCL_DEBUG"
	Action Action `json:"action"`           //
	Detail string `json:"detail,omitempty"` // the values involved
}

// Result is the decision for one Pod.
type Result struct {
	// Profile is the profile applied, nil when none was (see Reason).
	Profile *profile.Compiled
	Reason  string
	Patch   []jsonpatch.Operation
	Items   []Item
}

// Options configure the injector.
type Options struct {
	Keys Keys
}

// Mutate decides what the chosen profile adds to pod and returns the patch that does it. pod is
// updated in place to the patched state, so callers can show the result; pass a copy to keep the
// original. A Pod that names an unknown profile gets a *RefusedError.
func Mutate(pod *corev1.Pod, set *profile.Set, opts Options) (*Result, error) {
	p, reason, err := choose(pod, set, opts.Keys)
	if err != nil || p == nil {
		return &Result{Reason: reason}, err
	}
	m := &mutation{pod: pod, p: p, res: &Result{Profile: p}}
	m.apply(opts.Keys)
	return m.res, nil
}

// Skipped returns the items where the user's value won over the profile.
func (r *Result) Skipped() []Item {
	var out []Item
	for _, it := range r.Items {
		if it.Action == Skipped {
			out = append(out, it)
		}
	}
	return out
}

// Warnings are short messages for the AdmissionResponse, one per skipped item, each under the
// 120 characters the API server recommends.
func (r *Result) Warnings() []string {
	var out []string
	for _, it := range r.Skipped() {
		out = append(out, shorten(fmt.Sprintf("%s: kept %s's %s", r.Profile.Name, it.Where, it.label())+" ("+it.Detail+")", 119))
	}
	return out
}

func (it Item) label() string {
	if it.Key == "" {
		return it.Field
	}
	return it.Field + " " + it.Key
}

// shorten cuts s to at most n bytes without splitting a UTF-8 character.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

type mutation struct {
	pod *corev1.Pod
	p   *profile.Compiled
	res *Result
	// foreign holds the profile's volume names that the Pod defines differently: the Pod's
	// volume of that name is the user's, and the profile must not mount it.
	foreign map[string]bool
}

func (m *mutation) op(o jsonpatch.Operation) { m.res.Patch = append(m.res.Patch, o) }

func (m *mutation) note(where, field, key string, a Action, detail string) {
	m.res.Items = append(m.res.Items, Item{Where: where, Field: field, Key: key, Action: a, Detail: detail})
}

// conflict records what happens when the Pod already has a different value: it returns true
// when the profile enforces the field and the caller must overwrite.
func (m *mutation) conflict(where, field, key, have, want string) bool {
	if m.p.Enforced(field, key) {
		m.note(where, field, key, Enforced, fmt.Sprintf("was %s, now %s", have, want))
		return true
	}
	m.note(where, field, key, Skipped, fmt.Sprintf("pod: %s, profile: %s", have, want))
	return false
}

func (m *mutation) apply(keys Keys) {
	s := &m.p.Pod
	tgts := targets(m.pod, m.p)
	m.mapEntries("/metadata/labels", &m.pod.Labels, "labels", s.Labels)
	m.mapEntries("/metadata/annotations", &m.pod.Annotations, "annotations", s.Annotations)
	m.stamp(keys.Injected)
	spec := &m.pod.Spec
	if m.scalar("/spec/runtimeClassName", "runtimeClassName", ptr.Deref(spec.RuntimeClassName, ""), s.RuntimeClassName, "") {
		spec.RuntimeClassName = ptr.To(s.RuntimeClassName)
	}
	// The API server defaults an empty schedulerName before webhooks run: that is no user choice.
	if m.scalar("/spec/schedulerName", "schedulerName", spec.SchedulerName, s.SchedulerName, corev1.DefaultSchedulerName) {
		spec.SchedulerName = s.SchedulerName
	}
	if m.scalar("/spec/priorityClassName", "priorityClassName", spec.PriorityClassName, s.PriorityClassName, "") {
		spec.PriorityClassName = s.PriorityClassName
		m.dropResolvedPriority()
	}
	m.mapEntries("/spec/nodeSelector", &m.pod.Spec.NodeSelector, "nodeSelector", s.NodeSelector)
	m.tolerations(s.Tolerations)
	m.requiredAffinity(s.Affinity.Required)
	m.preferredAffinity(s.Affinity.Preferred)
	for i := range s.Volumes {
		m.volume(s.Volumes[i])
	}
	if shm := m.p.Derived.Shm; shm != nil {
		m.shmVolume(shm, tgts)
	}
	for _, t := range tgts {
		m.container(t)
	}
	if m.p.Derived.HideGPUsFromNonGPUContainers && podRequests(m.pod, m.p.GPUResource) {
		for _, t := range allContainers(m.pod) {
			if !requests(t.c, m.p.GPUResource) {
				m.env(t, corev1.EnvVar{Name: profile.EnvNvidiaVisibleDevices, Value: "void"})
			}
		}
	}
}

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

// appendTo adds v to the array at path, creating the array when the Pod has none: a JSON
// Patch "add" to path/- fails on an absent array.
func (m *mutation) appendTo(path string, n int, v any) {
	if n == 0 {
		m.op(jsonpatch.Add(path, []any{v}))
		return
	}
	m.op(jsonpatch.Add(path+"/-", v))
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
				m.note("pod", "affinity.required", r.Key, Skipped, fmt.Sprintf("pod term %d: %s, profile: %s",
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

func (m *mutation) volumeIndex(name string) int {
	for i := range m.pod.Spec.Volumes {
		if m.pod.Spec.Volumes[i].Name == name {
			return i
		}
	}
	return -1
}

func (m *mutation) volume(v corev1.Volume) {
	idx := m.volumeIndex(v.Name)
	switch {
	case idx < 0:
		m.appendTo("/spec/volumes", len(m.pod.Spec.Volumes), v)
		m.pod.Spec.Volumes = append(m.pod.Spec.Volumes, v)
		m.note("pod", "volumes", v.Name, Applied, "")
	case equality.Semantic.DeepEqual(m.pod.Spec.Volumes[idx], v):
		m.note("pod", "volumes", v.Name, Kept, "")
	default:
		m.replaceVolume(idx, v, "the profile's")
	}
}

// replaceVolume settles a clash over a volume name: the profile's volume replaces the Pod's
// when enforced; otherwise the Pod keeps its own and the profile's mounts of it are skipped.
func (m *mutation) replaceVolume(idx int, v corev1.Volume, want string) {
	if m.conflict("pod", "volumes", v.Name, "another source", want) {
		m.op(jsonpatch.Replace(fmt.Sprintf("/spec/volumes/%d", idx), v))
		m.pod.Spec.Volumes[idx] = v
		return
	}
	if m.foreign == nil {
		m.foreign = map[string]bool{}
	}
	m.foreign[v.Name] = true
}

// shmVolume adds the memory-backed /dev/shm volume, sized from the largest memory limit among
// the targeted containers that will mount it. It is added only when some container needs it.
func (m *mutation) shmVolume(shm *profile.Shm, tgts []target) {
	var largest *resource.Quantity
	needed := false
	for _, t := range tgts {
		if mountIndex(t.c, shm.MountPath) >= 0 {
			continue
		}
		needed = true
		if q, ok := t.c.Resources.Limits[corev1.ResourceMemory]; ok && (largest == nil || q.Cmp(*largest) > 0) {
			largest = &q
		}
	}
	if !needed {
		return
	}
	size, detail := shm.Default, "default size "+shm.Default.String()
	if largest != nil {
		size = *resource.NewQuantity(int64(float64(largest.Value())*shm.Fraction), resource.BinarySI)
		detail = fmt.Sprintf("%g of memory limit %s", shm.Fraction, largest.String())
	}
	ed := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
	if !size.IsZero() {
		ed.SizeLimit = &size
	}
	idx := m.volumeIndex(shm.VolumeName)
	switch {
	case idx < 0:
		v := corev1.Volume{Name: shm.VolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: ed}}
		m.appendTo("/spec/volumes", len(m.pod.Spec.Volumes), v)
		m.pod.Spec.Volumes = append(m.pod.Spec.Volumes, v)
		m.note("pod", "volumes", shm.VolumeName, Applied, "memory-backed, "+detail)
	case isMemoryEmptyDir(&m.pod.Spec.Volumes[idx]):
		// Already memory-backed (ours from an earlier call, or the user's): keep its size, so a
		// reinvocation never resizes what the first call set.
		m.note("pod", "volumes", shm.VolumeName, Kept, "already memory-backed")
	default:
		m.replaceVolume(idx, corev1.Volume{Name: shm.VolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: ed}}, "memory-backed emptyDir")
	}
}

func isMemoryEmptyDir(v *corev1.Volume) bool {
	return v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory
}

func mountIndex(c *corev1.Container, mountPath string) int {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == mountPath {
			return i
		}
	}
	return -1
}
