package inject

// Devices through Dynamic Resource Allocation (resource.k8s.io/v1): the profile's
// container.resourceClaims become the Pod's spec.resourceClaims entries (each from a
// ResourceClaimTemplate, so the resource-claim controller makes one claim per Pod) and each
// targeted container's resources.claims. All of them are added, or none.

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/jsonpatch"
)

// resourceClaims adds the profile's claims to spec.resourceClaims and returns the container
// claims to list, or nil when the Pod does not get them: it requests devices itself (a GPU
// limit, or claims that are not the profile's), which wins, enforced or not, since a second
// request would ask the node for more devices; or a template is missing from the Pod's
// namespace, which would leave the Pod unschedulable.
func (m *mutation) resourceClaims(tgts []target) []corev1.ResourceClaim {
	want := m.p.Container.ResourceClaims
	if len(want) == 0 {
		return nil
	}
	if len(tgts) == 0 { // a claim no container lists would hold devices nobody uses
		for _, w := range want {
			m.pass("pod", "resourceClaims", w.Name, NotUsed, "no container is targeted", "")
		}
		return nil
	}
	if why := m.ownDevices(); why != "" {
		for _, w := range want {
			m.pass("pod", "resourceClaims", w.Name, Skipped, why, "")
		}
		return nil
	}
	missing := false
	for _, w := range want {
		tmpl := ptr.Deref(w.ResourceClaimTemplateName, "")
		// No namespace (a template or file offline; admission always has one): not checked.
		if m.podClaimIndex(w.Name) >= 0 || !m.facts.Known || m.pod.Namespace == "" || m.facts.ResourceClaimTemplates[m.pod.Namespace+"/"+tmpl] {
			continue
		}
		missing = true
		m.pass("pod", "resourceClaims", w.Name, Missing, "ResourceClaimTemplate "+tmpl+" not found in the namespace", "namespace "+m.pod.Namespace)
		m.res.Missing = append(m.res.Missing, Object{Kind: KindResourceClaimTemplate, Name: tmpl})
	}
	if missing {
		return nil
	}
	out := make([]corev1.ResourceClaim, 0, len(want))
	for _, w := range want {
		detail := "from template " + ptr.Deref(w.ResourceClaimTemplateName, "")
		if m.podClaimIndex(w.Name) >= 0 {
			m.note("pod", "resourceClaims", w.Name, Kept, detail)
		} else {
			m.appendTo("/spec/resourceClaims", len(m.pod.Spec.ResourceClaims), w)
			m.pod.Spec.ResourceClaims = append(m.pod.Spec.ResourceClaims, w)
			m.note("pod", "resourceClaims", w.Name, Applied, detail)
		}
		out = append(out, corev1.ResourceClaim{Name: w.Name})
	}
	return out
}

// ownDevices says why the Pod's own device requests win, empty when it has none: a container
// requesting a GPU through limits, a spec.resourceClaims entry that is not one of the profile's
// (the same name and template: added by an earlier call), or a container claim of another name.
func (m *mutation) ownDevices() string {
	want := m.p.Container.ResourceClaims
	ours := func(name string) bool {
		return slices.ContainsFunc(want, func(w corev1.PodResourceClaim) bool { return w.Name == name })
	}
	for _, pc := range m.pod.Spec.ResourceClaims {
		if !slices.ContainsFunc(want, func(w corev1.PodResourceClaim) bool { return equality.Semantic.DeepEqual(w, pc) }) {
			return "the pod lists its own resourceClaims"
		}
	}
	for _, t := range allContainers(m.pod) {
		if requestsGPULimit(t.c, m.p.GPUResource) {
			return "the pod requests a GPU through limits"
		}
		for _, c := range t.c.Resources.Claims {
			if !ours(c.Name) {
				return "the pod's containers claim devices themselves"
			}
		}
	}
	return ""
}

func (m *mutation) podClaimIndex(name string) int {
	return slices.IndexFunc(m.pod.Spec.ResourceClaims, func(c corev1.PodResourceClaim) bool { return c.Name == name })
}

// containerClaim lists one of the profile's claims in the container's resources.claims.
func (m *mutation) containerClaim(t target, c corev1.ResourceClaim) {
	res := &t.c.Resources
	switch {
	case slices.ContainsFunc(res.Claims, func(h corev1.ResourceClaim) bool { return h.Name == c.Name }):
		m.note(t.where, "resources.claims", c.Name, Kept, "")
		return
	case len(res.Claims) == 0 && len(res.Limits) == 0 && len(res.Requests) == 0:
		// resources may be absent from the request JSON: add the object, which also covers it.
		m.op(jsonpatch.Add(t.path+"/resources", corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{c}}))
	default:
		m.appendTo(t.path+"/resources/claims", len(res.Claims), c)
	}
	res.Claims = append(res.Claims, c)
	m.note(t.where, "resources.claims", c.Name, Applied, "")
}
