package controlplane

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// derivedProfiles compute /dev/shm, OMP_NUM_THREADS and GPU hiding from the Pod; fractions that
// round, a default below one KiB, and no default at all.
const derivedProfiles = `profiles:
- name: derived-third
  derived: {shm: {fraction: 0.3, default: "1000"}, ompNumThreadsFromCPU: true, hideGPUsFromNonGPUContainers: true}
- name: derived-half
  derived: {shm: {fraction: 0.5}, ompNumThreadsFromCPU: true, hideGPUsFromNonGPUContainers: true}
- name: derived-tiny
  derived: {shm: {fraction: 0.001, default: 64Mi}, ompNumThreadsFromCPU: true}
`

// The policies compute the derived values exactly as the webhook does: for each CPU limit,
// memory limit (boundaries of rounding, of the quantity formats and of the integer range) and
// GPU request below, the Pod stored through the compiled policy equals the one stored through
// the webhook, field by field, and -v prints the values both computed.
func TestPolicyDerivedValuesEqualTheWebhooks(t *testing.T) {
	requireControlPlane(t)
	set, err := profile.Parse([]byte(derivedProfiles), domain)
	if err != nil {
		t.Fatal(err)
	}
	viaWebhook, viaPolicy, served := startBothBackends(t, []byte(derivedProfiles), set)
	if len(served) != set.Len() {
		t.Fatalf("policies serve %v of %v", served, set.Names())
	}
	cpus := []string{"1", "100m", "999m", "1001m", "1500m", "0.5", "2.0001", "1999999999n", "3", "7999m", "64", "1000001m"}
	memories := []string{"1", "999", "1000", "1023", "1024", "1025", "1500m", "3000", "4Gi", "1e9", "1.5Gi", "3221225473",
		"123456789012345678", "9007199254740993", "4611686018427387902", "4611686018427387903", "7Ei"}
	gpus := []corev1.ResourceList{nil, {"nvidia.com/gpu": resource.MustParse("1")}, {"nvidia.com/gpu": resource.MustParse("0")},
		{"nvidia.com/mig-1g.10gb": resource.MustParse("1")}, {"example.com/fpga": resource.MustParse("1")}}
	type pod struct {
		name string
		spec corev1.PodSpec
	}
	var pods []pod
	container := func(name string, limits corev1.ResourceList) corev1.Container {
		return corev1.Container{Name: name, Image: "registry.example/" + name + ":1", Resources: corev1.ResourceRequirements{Limits: limits}}
	}
	for i := range max(len(cpus), len(memories)) {
		limits := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpus[i%len(cpus)]),
			corev1.ResourceMemory: resource.MustParse(memories[i%len(memories)])}
		for r, q := range gpus[i%len(gpus)] {
			limits[r] = q
		}
		pods = append(pods, pod{fmt.Sprintf("limits-%d", i), corev1.PodSpec{Containers: []corev1.Container{
			container("main", limits), container("helper", nil)}}})
	}
	// Pod-level limits: used where containers set none, and bounding /dev/shm below them.
	podLevel := corev1.PodSpec{Resources: &corev1.ResourceRequirements{Limits: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("2500m"), corev1.ResourceMemory: resource.MustParse("3Gi")}},
		Containers: []corev1.Container{container("main", nil), container("big", corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")})}}
	pods = append(pods, pod{"pod-level", podLevel})
	zero := corev1.PodSpec{Containers: []corev1.Container{container("main", corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("0"), corev1.ResourceMemory: resource.MustParse("0")})}}
	pods = append(pods, pod{"zero-limits", zero})

	var problems, values []string
	for _, v := range served {
		for _, p := range pods {
			sent := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: map[string]string{profileKey: v}}, Spec: *p.spec.DeepCopy()}
			hook, err := createPod(viaWebhook, sent.DeepCopy(), true)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s %s: webhook: %v", v, p.name, err))
				continue
			}
			pol, err := createPod(viaPolicy, sent, true)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s %s: policy: %v", v, p.name, err))
				continue
			}
			if d := storedDiff(hook, pol); d != "" {
				problems = append(problems, fmt.Sprintf("%s %s (-webhook +policy):\n%s", v, p.name, d))
			}
			values = append(values, fmt.Sprintf("%s %s: %s", v, p.name, derivedValues(pol)))
		}
	}
	if len(problems) > 0 {
		t.Errorf("%d of %d Pods differ:\n%s", len(problems), len(served)*len(pods), strings.Join(problems, "\n"))
	}
	t.Logf("derived values, equal through both backends:\n  %s", strings.Join(values, "\n  "))
}

// derivedValues shows what a stored Pod got: the /dev/shm size, and each container's
// OMP_NUM_THREADS and NVIDIA_VISIBLE_DEVICES.
func derivedValues(p *corev1.Pod) string {
	var parts []string
	for _, v := range p.Spec.Volumes {
		if v.Name == "dshm" && v.EmptyDir != nil {
			size := "unbounded"
			if v.EmptyDir.SizeLimit != nil {
				size = v.EmptyDir.SizeLimit.String()
			}
			parts = append(parts, "shm "+size)
		}
	}
	for _, c := range p.Spec.Containers {
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name+"="+e.Value)
		}
		parts = append(parts, fmt.Sprintf("%s limits %s env %v", c.Name, describeList(c.Resources.Limits), env))
	}
	return strings.Join(parts, "; ")
}
