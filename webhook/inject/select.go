package inject

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ai-webhook/ai-webhook/webhook/internal/text"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// mirrorPodAnnotation marks static Pods the kubelet mirrors into the API; they cannot be changed.
const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// choose picks the profile for a Pod: nil with a reason when none applies.
func choose(pod *corev1.Pod, set *profile.Set, keys profile.Keys) (*profile.Compiled, string, error) {
	if _, ok := pod.Annotations[mirrorPodAnnotation]; ok {
		return nil, "mirror pod", nil
	}
	// Read as an annotation or a label, like the profile key: an opt-out written as a label
	// must not be ignored and the Pod injected.
	for _, kind := range []string{"annotation", "label"} {
		m := pod.Annotations
		if kind == "label" {
			m = pod.Labels
		}
		v, ok := m[keys.Inject]
		if !ok {
			continue
		}
		// profile.OptOutValues wins over everything; an opt-in value changes nothing (the Pod
		// is handled as if the key were absent); any other value is refused.
		switch w := strings.ToLower(strings.TrimSpace(v)); {
		case slices.Contains(profile.OptOutValues, w):
			return nil, "opted out with " + kind + " " + keys.Inject + "=" + w, nil
		case !slices.Contains(profile.OptInValues, w):
			return nil, "", &RefusedError{Reason: fmt.Sprintf("%s %s=%q is not recognised: %s opt out, %s opt in (or remove it)",
				kind, keys.Inject, text.Cap(v, 40), strings.Join(profile.OptOutValues, "/"), strings.Join(profile.OptInValues, "/"))}
		}
	}
	byLabel, byAnnotation := pod.Labels[keys.Profile], pod.Annotations[keys.Profile]
	if byLabel != "" && byAnnotation != "" && byLabel != byAnnotation {
		return nil, "", &RefusedError{Reason: fmt.Sprintf("label %s=%q and annotation %s=%q disagree: set one",
			keys.Profile, text.Cap(byLabel, 64), keys.Profile, text.Cap(byAnnotation, 64))}
	}
	name := byLabel
	if name == "" {
		name = byAnnotation
	}
	if name != "" {
		p, ok := set.Get(name)
		if !ok {
			return nil, "", &RefusedError{Reason: fmt.Sprintf("unknown profile %q in %s; known profiles: %s",
				text.Cap(name, 64), keys.Profile, strings.Join(set.Names(), ", "))}
		}
		return p, "", nil
	}
	if p, ok := set.Default(); ok && podRequestsGPU(pod, p.GPUResource) {
		return p, "", nil
	}
	return nil, "no profile requested", nil
}

// podRequestsGPU reports whether any app or init container of the Pod asks for a GPU.
func podRequestsGPU(pod *corev1.Pod, gpu corev1.ResourceName) bool {
	for _, t := range allContainers(pod) {
		if requestsGPU(t.c, gpu) {
			return true
		}
	}
	return false
}

// requestsGPU reports whether a container asks for a GPU: through a limit (requestsGPULimit) or
// a DRA claim (resources.claims), which the webhook cannot tell apart from one for a GPU
// without reading the claim, so it counts as one.
func requestsGPU(c *corev1.Container, gpu corev1.ResourceName) bool {
	return len(c.Resources.Claims) > 0 || requestsGPULimit(c, gpu)
}

// requestsGPULimit reports whether a container asks for a GPU through an extended resource: a
// non-zero limit or request of the profile's gpuResource, or of another GPU resource of the
// same vendor (isGPUResource), such as a MIG slice. An explicit zero ("nvidia.com/gpu: 0") asks
// for none.
func requestsGPULimit(c *corev1.Container, gpu corev1.ResourceName) bool {
	for _, l := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
		for r, q := range l {
			if !q.IsZero() && isGPUResource(r, gpu) {
				return true
			}
		}
	}
	return false
}

// isGPUResource reports whether r is the profile's gpuResource or, under the same vendor domain,
// a whole or partitioned GPU: a name starting with "gpu" (nvidia.com/gpu.shared for time-sliced
// GPUs) or "mig-" (nvidia.com/mig-1g.10gb). A resource without a domain matches only itself.
func isGPUResource(r, gpu corev1.ResourceName) bool {
	if r == gpu {
		return true
	}
	vendor, _, ok := strings.Cut(string(gpu), "/")
	rv, name, rok := strings.Cut(string(r), "/")
	return ok && rok && rv == vendor && (strings.HasPrefix(name, "gpu") || strings.HasPrefix(name, "mig-"))
}

// target is a container the profile reaches, with its JSON-pointer prefix.
type target struct {
	c     *corev1.Container
	path  string // e.g. /spec/containers/0
	where string // e.g. `container "trainer"`, for the account of items
}

func newTarget(c *corev1.Container, list string, i int, kind string) target {
	return target{c: c, path: "/spec/" + list + "/" + strconv.Itoa(i), where: kind + " " + strconv.Quote(c.Name)}
}

// targets lists the containers a profile reaches, app containers first, in spec order.
// Regular init containers and native sidecars (init containers with restartPolicy Always) are
// reached only when the profile says so: init containers usually fetch or prepare and need no
// GPU, while a sidecar runs beside the app for the Pod's life.
func targets(pod *corev1.Pod, p *profile.Compiled) []target {
	var out []target
	want := func(c *corev1.Container) bool {
		switch p.Containers.Select {
		case profile.SelectNamed:
			for _, n := range p.Containers.Names {
				if n == c.Name {
					return true
				}
			}
			return false
		case profile.SelectGPU:
			return requestsGPU(c, p.GPUResource)
		}
		return true
	}
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; want(c) {
			out = append(out, newTarget(c, "containers", i, "container"))
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		sidecar := isSidecar(c)
		if (sidecar && !p.Containers.Sidecars) || (!sidecar && !p.Containers.InitContainers) || !want(c) {
			continue
		}
		out = append(out, newTarget(c, "initContainers", i, initKind(c)))
	}
	return out
}

// allContainers lists every container of the Pod, app containers first.
func allContainers(pod *corev1.Pod) []target {
	out := make([]target, 0, len(pod.Spec.Containers)+len(pod.Spec.InitContainers))
	for i := range pod.Spec.Containers {
		out = append(out, newTarget(&pod.Spec.Containers[i], "containers", i, "container"))
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		out = append(out, newTarget(c, "initContainers", i, initKind(c)))
	}
	return out
}

// isSidecar reports a native sidecar: an init container that keeps running (restartPolicy Always).
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func initKind(c *corev1.Container) string {
	if isSidecar(c) {
		return "sidecar"
	}
	return "init container"
}
