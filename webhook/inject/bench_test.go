package inject

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// typicalGPUPod is a training Pod as users write it, before the profile adds the GPU limit: the
// training container and a metrics exporter beside it.
func typicalGPUPod() *corev1.Pod {
	return newPod(withProfile("pytorch-training"), func(p *corev1.Pod) {
		p.Spec.Containers = []corev1.Container{
			{Name: "pytorch", Image: "pytorch", Resources: corev1.ResourceRequirements{Limits: limits("cpu", "16", "memory", "64Gi")},
				Env: []corev1.EnvVar{{Name: "MASTER_ADDR", Value: "job-0"}, {Name: "WORLD_SIZE", Value: "8"}}},
			{Name: "exporter", Image: "exporter", Resources: corev1.ResourceRequirements{Limits: limits("cpu", "100m", "memory", "64Mi")}},
		}
	})
}

// pathologicalPod has 20 containers with 1,000 env vars in all: the cost must follow the
// change, not the Pod.
func pathologicalPod() *corev1.Pod {
	pod := newPod(withProfile("pytorch-training"))
	pod.Spec.Containers = nil
	for i := 0; i < 20; i++ {
		c := corev1.Container{Name: fmt.Sprintf("pytorch-%d", i), Image: "img"}
		if i == 0 {
			c.Name = "pytorch"
		}
		for j := 0; j < 50; j++ {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("VAR_%d_%d", i, j), Value: "value"})
		}
		pod.Spec.Containers = append(pod.Spec.Containers, c)
	}
	return pod
}

func benchmarkMutate(b *testing.B, pod *corev1.Pod) {
	set, err := profile.Parse(profile.Examples, profile.DefaultDomain)
	if err != nil {
		b.Fatal(err)
	}
	copies := make([]*corev1.Pod, b.N)
	for i := range copies {
		copies[i] = pod.DeepCopy()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Mutate(copies[i], set, testKeys); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMutateTypicalGPUPod(b *testing.B)   { benchmarkMutate(b, typicalGPUPod()) }
func BenchmarkMutatePathologicalPod(b *testing.B) { benchmarkMutate(b, pathologicalPod()) }
