package controlplane

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const gpuResource corev1.ResourceName = "nvidia.com/gpu"

// expectGPUProfile fails t with each way pod differs from a trainingPod with
// the gpu-training profile applied (see gpuProfileProblems).
func expectGPUProfile(t *testing.T, pod *corev1.Pod, containers ...string) {
	t.Helper()
	for _, p := range gpuProfileProblems(pod, containers...) {
		t.Error(p)
	}
}

// gpuProfileProblems lists how pod differs from a trainingPod with the
// gpu-training profile of testdata/profiles.yaml applied to the named
// containers (all containers when none are named). Empty means applied.
func gpuProfileProblems(pod *corev1.Pod, containers ...string) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	if v := pod.Annotations[injectedKey]; !strings.HasPrefix(v, gpuProfile+"@") || len(v) == len(gpuProfile+"@") {
		bad("annotation %s = %q, want %s@<hash>", injectedKey, v, gpuProfile)
	}
	if pod.Labels[domain+"/workload"] != "training" {
		bad("label %s/workload = %q, want training", domain, pod.Labels[domain+"/workload"])
	}
	if pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName != "nvidia" {
		bad("runtimeClassName = %v, want nvidia", deref(pod.Spec.RuntimeClassName))
	}
	if pod.Spec.NodeSelector["nvidia.com/gpu.present"] != "true" {
		bad("nodeSelector = %v, want nvidia.com/gpu.present=true", pod.Spec.NodeSelector)
	}
	if n := countTolerations(pod, corev1.Toleration{Key: string(gpuResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}); n != 1 {
		bad("%d GPU tolerations (nvidia.com/gpu Exists NoSchedule), want 1: %v", n, pod.Spec.Tolerations)
	}
	var shm *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == "dshm" {
			shm = &pod.Spec.Volumes[i]
		}
	}
	switch {
	case shm == nil || shm.EmptyDir == nil:
		bad("no emptyDir volume dshm: %v", pod.Spec.Volumes)
	case shm.EmptyDir.Medium != corev1.StorageMediumMemory:
		bad("dshm medium = %q, want Memory", shm.EmptyDir.Medium)
	case shm.EmptyDir.SizeLimit == nil || shm.EmptyDir.SizeLimit.Cmp(resource.MustParse("2Gi")) != 0:
		// fraction 0.5 of the largest memory limit (4Gi).
		bad("dshm sizeLimit = %v, want 2Gi", shm.EmptyDir.SizeLimit)
	}

	wantEnv := map[string]string{"NCCL_DEBUG": "WARN", "PYTHONUNBUFFERED": "1"}
	for _, c := range pod.Spec.Containers {
		if len(containers) > 0 && !slices.Contains(containers, c.Name) {
			continue
		}
		if q := c.Resources.Limits[gpuResource]; q.Cmp(resource.MustParse("1")) != 0 {
			bad("container %s: limits[%s] = %v, want 1", c.Name, gpuResource, q.String())
		}
		env := envMap(c)
		for k, v := range wantEnv {
			if env[k] != v {
				bad("container %s: env %s = %q, want %q", c.Name, k, env[k], v)
			}
		}
		if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok && env["OMP_NUM_THREADS"] != fmt.Sprint(cpu.Value()) {
			bad("container %s: OMP_NUM_THREADS = %q, want %d (its CPU limit)", c.Name, env["OMP_NUM_THREADS"], cpu.Value())
		}
		if !hasMount(c, "dshm", "/dev/shm") {
			bad("container %s: dshm not mounted at /dev/shm: %v", c.Name, c.VolumeMounts)
		}
	}
	return append(probs, duplicateProblems(pod)...)
}

// untouchedProblems lists what the webhook changed in got, created from sent.
// The API server's own defaulting and built-in admission may add fields; the
// webhook's fields must be absent and the containers as sent.
func untouchedProblems(got, sent *corev1.Pod) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if v, ok := got.Annotations[injectedKey]; ok {
		bad("annotation %s = %q, want none", injectedKey, v)
	}
	if !reflect.DeepEqual(got.Labels, sent.Labels) {
		bad("labels = %v, want %v", got.Labels, sent.Labels)
	}
	if got.Spec.RuntimeClassName != nil {
		bad("runtimeClassName = %q, want none", *got.Spec.RuntimeClassName)
	}
	if len(got.Spec.NodeSelector) != 0 {
		bad("nodeSelector = %v, want none", got.Spec.NodeSelector)
	}
	if len(got.Spec.Volumes) != len(sent.Spec.Volumes) {
		bad("volumes = %v, want %v", got.Spec.Volumes, sent.Spec.Volumes)
	}
	if n := countTolerations(got, corev1.Toleration{Key: string(gpuResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}); n != 0 {
		bad("GPU toleration added: %v", got.Spec.Tolerations)
	}
	if len(got.Spec.Containers) != len(sent.Spec.Containers) {
		bad("%d containers, want %d", len(got.Spec.Containers), len(sent.Spec.Containers))
		return probs
	}
	for i, c := range got.Spec.Containers {
		s := sent.Spec.Containers[i]
		if !reflect.DeepEqual(c.Env, s.Env) {
			bad("container %s: env = %v, want %v", c.Name, c.Env, s.Env)
		}
		if !reflect.DeepEqual(c.VolumeMounts, s.VolumeMounts) {
			bad("container %s: volumeMounts = %v, want %v", c.Name, c.VolumeMounts, s.VolumeMounts)
		}
		if !equalResources(c.Resources.Limits, s.Resources.Limits) {
			bad("container %s: limits = %v, want %v", c.Name, c.Resources.Limits, s.Resources.Limits)
		}
	}
	return probs
}

// duplicateProblems finds entries that appear twice: what a webhook that is
// not idempotent leaves behind when it is reinvoked.
func duplicateProblems(pod *corev1.Pod) []string {
	var probs []string
	dup := func(what string, names []string) {
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				probs = append(probs, fmt.Sprintf("duplicate %s %q", what, n))
			}
			seen[n] = true
		}
	}
	var vols, tols, ctrs []string
	for _, v := range pod.Spec.Volumes {
		vols = append(vols, v.Name)
	}
	for _, t := range pod.Spec.Tolerations {
		tols = append(tols, fmt.Sprintf("%s/%s/%s/%s", t.Key, t.Operator, t.Value, t.Effect))
	}
	dup("volume", vols)
	dup("toleration", tols)
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		ctrs = append(ctrs, c.Name)
		var env, mounts []string
		for _, e := range c.Env {
			env = append(env, e.Name)
		}
		for _, m := range c.VolumeMounts {
			mounts = append(mounts, m.MountPath)
		}
		dup("env var in container "+c.Name, env)
		dup("mount path in container "+c.Name, mounts)
	}
	dup("container", ctrs)
	return probs
}

func countTolerations(pod *corev1.Pod, want corev1.Toleration) int {
	n := 0
	for _, t := range pod.Spec.Tolerations {
		if t.Key == want.Key && t.Operator == want.Operator && t.Effect == want.Effect {
			n++
		}
	}
	return n
}

func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func hasMount(c corev1.Container, volume, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume && m.MountPath == path {
			return true
		}
	}
	return false
}

func equalResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, q := range a {
		if r, ok := b[k]; !ok || q.Cmp(r) != 0 {
			return false
		}
	}
	return true
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
