package inject

// Primitives the rules share: recording operations and items, settling conflicts, and the
// JSON Patch shapes that add to arrays and maps which may be absent.

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ai-webhook/ai-webhook/webhook/jsonpatch"
)

func (m *mutation) op(o jsonpatch.Operation) { m.res.Patch = append(m.res.Patch, o) }

func (m *mutation) note(where, field, key string, a Action, detail string) {
	m.res.Items = append(m.res.Items, Item{Where: where, Field: field, Key: key, Action: a, Detail: detail})
}

// pass records a setting the Pod does not get (Skipped or NotUsed) and why. reason names no
// value of the Pod, since warnings carry it; detail may, since only --explain shows it.
func (m *mutation) pass(where, field, key string, a Action, reason, detail string) {
	full := reason
	if detail != "" {
		full = strings.TrimPrefix(reason+"; "+detail, "; ")
	}
	m.res.Items = append(m.res.Items, Item{Where: where, Field: field, Key: key, Action: a, Reason: reason, Detail: full})
}

// conflict records what happens when the Pod already has a different value: it returns true
// when the profile enforces the field and the caller must overwrite.
func (m *mutation) conflict(where, field, key, have, want string) bool {
	if m.p.Enforced(field, key) {
		m.note(where, field, key, Enforced, fmt.Sprintf("was %s, now %s", have, want))
		return true
	}
	m.pass(where, field, key, Skipped, "", fmt.Sprintf("pod: %s, profile: %s", have, want))
	return false
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

// mapAdd adds one entry to a ResourceList member of resources, creating what is absent (an
// empty list is omitted from the JSON, so it counts as absent). When the whole resources
// object may be absent from the request JSON (it is empty in the typed Pod), the object itself
// is added, which also covers a missing parent.
func (m *mutation) mapAdd(parent string, list *corev1.ResourceList, member string, r corev1.ResourceName, q resource.Quantity, parentMayBeAbsent bool) {
	switch {
	case len(*list) == 0 && parentMayBeAbsent:
		*list = corev1.ResourceList{r: q}
		m.op(jsonpatch.Add(parent, map[string]corev1.ResourceList{member: {r: q}}))
	case len(*list) == 0:
		*list = corev1.ResourceList{r: q}
		m.op(jsonpatch.Add(parent+"/"+member, corev1.ResourceList{r: q}))
	default:
		(*list)[r] = q
		m.op(jsonpatch.Add(parent+"/"+member+"/"+jsonpatch.Escape(string(r)), q))
	}
}

func (m *mutation) volumeIndex(name string) int {
	for i := range m.pod.Spec.Volumes {
		if m.pod.Spec.Volumes[i].Name == name {
			return i
		}
	}
	return -1
}

// mountIndex finds the container's mount at mountPath. Paths are compared cleaned: /models/
// and /models are one directory, and two mounts on it make the API server refuse the Pod.
func mountIndex(c *corev1.Container, mountPath string) int {
	want := path.Clean(mountPath)
	for i := range c.VolumeMounts {
		if path.Clean(c.VolumeMounts[i].MountPath) == want {
			return i
		}
	}
	return -1
}

// sortedKeys makes patch order deterministic.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
