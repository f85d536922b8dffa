package inject

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// mirrorPodAnnotation marks static Pods the kubelet mirrors into the API; they cannot be changed.
const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// choose picks the profile for a Pod: nil with a reason when none applies.
func choose(pod *corev1.Pod, set *profile.Set, keys Keys) (*profile.Compiled, string, error) {
	if _, ok := pod.Annotations[mirrorPodAnnotation]; ok {
		return nil, "mirror pod", nil
	}
	if strings.EqualFold(pod.Annotations[keys.Inject], "false") {
		return nil, "opted out with " + keys.Inject + "=false", nil
	}
	byLabel, byAnnotation := pod.Labels[keys.Profile], pod.Annotations[keys.Profile]
	if byLabel != "" && byAnnotation != "" && byLabel != byAnnotation {
		return nil, "", &RefusedError{Reason: fmt.Sprintf("label %s=%q and annotation %s=%q disagree: set one",
			keys.Profile, byLabel, keys.Profile, byAnnotation)}
	}
	name := byLabel
	if name == "" {
		name = byAnnotation
	}
	if name != "" {
		p, ok := set.Get(name)
		if !ok {
			return nil, "", &RefusedError{Reason: fmt.Sprintf("unknown profile %q in %s; known profiles: %s",
				name, keys.Profile, strings.Join(set.Names(), ", "))}
		}
		return p, "", nil
	}
	if p, ok := set.Default(); ok && podRequests(pod, p.GPUResource) {
		return p, "", nil
	}
	return nil, "no profile requested", nil
}

// podRequests reports whether any container of the Pod asks for the resource.
func podRequests(pod *corev1.Pod, r corev1.ResourceName) bool {
	for i := range pod.Spec.InitContainers {
		if requests(&pod.Spec.InitContainers[i], r) {
			return true
		}
	}
	for i := range pod.Spec.Containers {
		if requests(&pod.Spec.Containers[i], r) {
			return true
		}
	}
	return false
}

func requests(c *corev1.Container, r corev1.ResourceName) bool {
	q, ok := c.Resources.Limits[r]
	if !ok {
		q, ok = c.Resources.Requests[r]
	}
	return ok && !q.IsZero()
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
			return requests(c, p.GPUResource)
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
