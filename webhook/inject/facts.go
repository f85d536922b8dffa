package inject

// Cluster facts: which of the objects a profile names exist in the cluster. A setting that
// names a missing object is not applied (the Pod is admitted without it, with a warning), since
// the API server would refuse the Pod: RuntimeClass "nvidia" not found.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// Facts are the cluster-scoped objects the injector checks, as plain names. The zero value is
// "unknown": every setting applies as it would without cluster awareness.
type Facts struct {
	// Known is true once the names below reflect the cluster (the caches synced, or a snapshot
	// was read). When false the sets are ignored.
	Known           bool
	RuntimeClasses  map[string]bool
	PriorityClasses map[string]bool
	// ResourceClaimTemplates are the templates a Pod may name, keyed "namespace/name" (a
	// template is namespaced: the Pod's own namespace must hold it).
	ResourceClaimTemplates map[string]bool
}

// Object kinds a profile may name, the label values of the missing-objects metric.
const (
	KindRuntimeClass          = "RuntimeClass"
	KindPriorityClass         = "PriorityClass"
	KindResourceClaimTemplate = "ResourceClaimTemplate"
)

// Object names a cluster object the profile named but the cluster lacks.
type Object struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// MutateWith is Mutate with what the cluster holds: a setting naming an object the facts say
// is missing is recorded as Missing and not applied.
func MutateWith(pod *corev1.Pod, set *profile.Set, keys profile.Keys, facts Facts) (*Result, error) {
	p, reason, err := choose(pod, set, keys)
	if err != nil || p == nil {
		return &Result{Reason: reason}, err
	}
	m := &mutation{pod: pod, p: p, res: &Result{Profile: p}, facts: facts}
	m.apply(keys)
	return m.res, nil
}

// inCluster returns want, or "" after recording why, when the profile would write a name the
// cluster does not have. It checks only when the profile would write: a Pod that already names
// the class, or whose own class wins, is decided by scalar as before.
func (m *mutation) inCluster(field, kind, have, want string, known map[string]bool) string {
	if want == "" || have == want || !m.facts.Known || known[want] {
		return want
	}
	if have != "" && !m.p.Enforced(field, "") {
		return want // the Pod's own value wins: scalar records it as skipped
	}
	m.pass("pod", field, "", Missing, fmt.Sprintf("%s %q not found in the cluster", kind, want), "")
	m.res.Missing = append(m.res.Missing, Object{Kind: kind, Name: want})
	return ""
}

// runtimeClass is the profile's runtime class for this Pod: "" when runtimeClassWhen is gpu and
// the Pod will request no GPU, or when the class is missing from the cluster.
func (m *mutation) runtimeClass(tgts []target) string {
	s := &m.p.Pod
	want := s.RuntimeClassName
	if want != "" && s.RuntimeClassWhen == profile.RuntimeClassGPU && !m.willRequestGPU(tgts) {
		m.pass("pod", "runtimeClassName", "", NotUsed, "runtimeClassWhen gpu: the Pod requests no GPU", "")
		return ""
	}
	return m.inCluster("runtimeClassName", KindRuntimeClass, ptr.Deref(m.pod.Spec.RuntimeClassName, ""), want, m.facts.RuntimeClasses)
}

// willRequestGPU reports whether the Pod asks for a GPU once the profile's limits are added: it
// does already, or a targeted container gets one of the profile's GPU limits (it sets none of
// its own, or the profile enforces it).
func (m *mutation) willRequestGPU(tgts []target) bool {
	if podRequestsGPU(m.pod, m.p.GPUResource) || len(m.claims) > 0 {
		return true
	}
	for r, q := range m.p.Container.Limits {
		if q.IsZero() || !isGPUResource(r, m.p.GPUResource) {
			continue
		}
		for _, t := range tgts {
			if _, own := t.c.Resources.Limits[r]; !own || m.p.Enforced("limits", string(r)) {
				return true
			}
		}
	}
	return false
}
