// Package inject decides what a profile adds to a Pod and expresses it as JSON Patch
// operations plus a per-item account (applied, kept, skipped, enforced). It is pure: no HTTP,
// no clock, no I/O, so the admission server, the offline `inject` command and the tests all
// share one decision.
//
// Reading order, following one Pod: Mutate and apply (this file) -> which profile and which
// containers (select.go) -> pod-level rules (pod.go) -> container-level rules (container.go)
// -> the primitives every rule uses (primitives.go).
package inject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/internal/text"
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
	Missing  Action = "missing"  // the setting names a cluster object that does not exist (Facts)
)

// Item accounts for one setting: the answer to "why does my Pod look like this?".
type Item struct {
	Where  string `json:"where"`         // "pod" or e.g. `container "trainer"`
	Field  string `json:"field"`         // e.g. "env", "limits", "runtimeClassName"
	Key    string `json:"key,omitempty"` // e.g. "NCCL_DEBUG"
	Action Action `json:"action"`        //
	// Reason says why a setting was skipped or not used, naming only the profile's settings,
	// never a value from the Pod: it is what a warning may carry.
	Reason string `json:"reason,omitempty"`
	// Detail shows the values involved, the Pod's included, for the offline --explain that runs
	// in the user's own terminal. It never leaves the process in an admission response.
	Detail string `json:"detail,omitempty"`
}

// Result is the decision for one Pod.
type Result struct {
	// Profile is the profile applied, nil when none was (see Reason).
	Profile *profile.Compiled
	Reason  string
	Patch   []jsonpatch.Operation
	Items   []Item
	// Missing lists the cluster objects the profile named but the cluster lacks (Facts).
	Missing []Object
}

// RefusedError means the Pod asks for something that cannot be honoured; the Pod is denied
// with Error() as the message.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// Mutate decides what the chosen profile adds to pod and returns the patch that does it; keys
// are the label and annotation keys (profile.KeysFor). pod is updated in place to the patched state, so
// callers can show the result; pass a copy to keep the original. A Pod that names an unknown
// profile gets a *RefusedError. Mutate knows nothing of the cluster; MutateWith does.
func Mutate(pod *corev1.Pod, set *profile.Set, keys profile.Keys) (*Result, error) {
	return MutateWith(pod, set, keys, Facts{})
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

// Warnings are short messages for the AdmissionResponse, one per skipped or missing item, each
// under the 120 characters the API server recommends. A warning names the setting and who won,
// never the Pod's value (it may be a secret): `notebook: kept container "trainer" env
// NCCL_DEBUG`, `llm-inference: did not set pod runtimeClassName (RuntimeClass "nvidia" not
// found in the cluster)`.
func (r *Result) Warnings() []string {
	var out []string
	for _, it := range r.Items {
		var w string
		switch it.Action {
		case Skipped:
			w = fmt.Sprintf("%s: kept %s %s", r.Profile.Name, it.Where, it.label())
		case Missing:
			w = fmt.Sprintf("%s: did not set %s %s", r.Profile.Name, it.Where, it.label())
		default:
			continue
		}
		if it.Reason != "" {
			w += " (" + it.Reason + ")"
		}
		out = append(out, text.Cap(w, 119))
	}
	return out
}

func (it Item) label() string {
	if it.Key == "" {
		return it.Field
	}
	return it.Field + " " + it.Key
}

type mutation struct {
	pod *corev1.Pod
	p   *profile.Compiled
	res *Result
	// foreign holds the profile's volume names that the Pod uses as its own (defined
	// differently, or mounted where the profile does not mount them): the profile must not
	// mount them.
	foreign map[string]bool
	facts   Facts
	// claims are the profile's DRA claims every targeted container lists (resourceClaims),
	// empty when the Pod does not get them.
	claims []corev1.ResourceClaim
}

// apply runs the rules in the order a reader would check a Pod: metadata, pod-level scalars,
// placement, volumes, then each targeted container (its limits first, so every derived value
// sees them), then what depends on all containers: /dev/shm and GPU hiding.
func (m *mutation) apply(keys profile.Keys) {
	s := &m.p.Pod
	tgts := targets(m.pod, m.p)
	m.mapEntries("/metadata/labels", &m.pod.Labels, "labels", s.Labels)
	m.mapEntries("/metadata/annotations", &m.pod.Annotations, "annotations", s.Annotations)
	m.stamp(keys.Injected)
	spec := &m.pod.Spec
	m.claims = m.resourceClaims(tgts) // before the runtime class: a claim makes a GPU Pod
	if rc := m.runtimeClass(tgts); m.scalar("/spec/runtimeClassName", "runtimeClassName", ptr.Deref(spec.RuntimeClassName, ""), rc, "") {
		spec.RuntimeClassName = ptr.To(rc)
		m.dropOverhead()
	}
	// The API server defaults an empty schedulerName before webhooks run: that is no user choice.
	if m.scalar("/spec/schedulerName", "schedulerName", spec.SchedulerName, s.SchedulerName, corev1.DefaultSchedulerName) {
		spec.SchedulerName = s.SchedulerName
	}
	pc := m.inCluster("priorityClassName", KindPriorityClass, spec.PriorityClassName, s.PriorityClassName, m.facts.PriorityClasses)
	if m.scalar("/spec/priorityClassName", "priorityClassName", spec.PriorityClassName, pc, "") {
		spec.PriorityClassName = pc
		m.dropResolvedPriority()
	}
	m.mapEntries("/spec/nodeSelector", &m.pod.Spec.NodeSelector, "nodeSelector", s.NodeSelector)
	m.tolerations(s.Tolerations)
	m.requiredAffinity(s.Affinity.Required)
	m.preferredAffinity(s.Affinity.Preferred)
	for i := range s.Volumes {
		m.volume(s.Volumes[i])
	}
	for _, t := range tgts {
		m.container(t)
	}
	if shm := m.p.Derived.Shm; shm != nil {
		m.shm(shm, tgts)
	}
	if m.p.Derived.HideGPUsFromNonGPUContainers {
		m.hideGPUs()
	}
}
