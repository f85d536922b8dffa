package audit

// The same decision from a Pod's labels and annotations alone, for a metadata-only cache of
// every Pod (the server's ai_webhook_pods_out_of_date): the keys the webhook reads are kept,
// nothing else, and Pods with the same keys are counted once.

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// OtherProfile counts the Pods stamped by, or asking for, a profile the file does not have,
// and those the webhook would refuse today: their names come from users, so they share one
// label value and the metric's label set stays the profile names plus this.
const OtherProfile = "_other"

// Meta is what the webhook reads of a Pod's metadata: its profile, opt-out and stamp keys
// (label and annotation) and whether it is a mirror Pod. It is comparable: across a cluster
// there are few distinct values, so a cache keeps one per value and counts Pods.
type Meta struct {
	ProfileLabel, ProfileAnnotation string
	// InjectLabel and InjectAnnotation are the <domain>/inject values; Has* say whether the
	// key is there (an empty value is refused, an absent one is not).
	InjectLabel, InjectAnnotation       string
	HasInjectLabel, HasInjectAnnotation bool
	Stamp                               string
	Mirror                              bool
}

// MetaOf keeps the keys the webhook reads.
func MetaOf(labels, annotations map[string]string, keys profile.Keys) Meta {
	m := Meta{ProfileLabel: labels[keys.Profile], ProfileAnnotation: annotations[keys.Profile], Stamp: annotations[keys.Injected]}
	m.InjectLabel, m.HasInjectLabel = labels[keys.Inject]
	m.InjectAnnotation, m.HasInjectAnnotation = annotations[keys.Inject]
	_, m.Mirror = annotations[corev1.MirrorPodAnnotationKey]
	return m
}

// Relevant reports whether the Pod carries any key the webhook reads; others need not be kept.
func (m Meta) Relevant() bool { return m != Meta{} }

// OutOfDate decides whether the Pod would change under today's profiles, as Run does, and
// under which profile to count it (OtherProfile for a profile gone or a refusal). A Pod that
// names no profile is judged by its stamp when it names the default profile (which applied
// because the Pod requests a GPU) or a profile gone; an unstamped Pod that names no profile is
// not counted (whether it requests a GPU is in its spec).
func (m Meta) OutOfDate(set *profile.Set, keys profile.Keys) (string, bool) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{}, Annotations: map[string]string{}}}
	put := func(into map[string]string, k, v string, has bool) {
		if has {
			into[k] = v
		}
	}
	put(pod.Labels, keys.Profile, m.ProfileLabel, m.ProfileLabel != "")
	put(pod.Annotations, keys.Profile, m.ProfileAnnotation, m.ProfileAnnotation != "")
	put(pod.Labels, keys.Inject, m.InjectLabel, m.HasInjectLabel)
	put(pod.Annotations, keys.Inject, m.InjectAnnotation, m.HasInjectAnnotation)
	put(pod.Annotations, keys.Injected, m.Stamp, m.Stamp != "")
	put(pod.Annotations, corev1.MirrorPodAnnotationKey, "", m.Mirror)
	name := m.ProfileLabel
	if name == "" {
		name = m.ProfileAnnotation
	}
	if name == "" {
		// Only the default profile applies to a Pod that names none; a stamp of another
		// profile that still exists is not listed by Run either.
		name, _, _ = strings.Cut(m.Stamp, profile.StampSep)
		_, exists := set.Get(name)
		if def, ok := set.Default(); exists && (!ok || def.Name != name) {
			return "", false
		}
		put(pod.Annotations, keys.Profile, name, name != "")
	}
	entry, _, listed := classify(pod, set, keys)
	switch {
	case !listed:
		return "", false
	case entry.Why == ProfileGone || entry.Why == WouldRefuse:
		return OtherProfile, true
	}
	return name, true
}
