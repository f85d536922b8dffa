package inject

import (
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// The shipped notebook profile tolerates the GPU taint, so a CPU notebook can land on a GPU
// node: the example notebook Pod (a CUDA image, no GPU request) gets NVIDIA_VISIBLE_DEVICES=void
// so that the image's default "all" exposes no GPU of the node, and says so (--explain's row).
// The same notebook asking for a GPU keeps it.
func TestShippedNotebookHidesGPUsUnlessTheNotebookRequestsOne(t *testing.T) {
	set, err := profile.Parse(profile.Examples, profile.DefaultDomain)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile("../examples/pods/notebook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var example corev1.Pod
	if err := yaml.UnmarshalStrict(y, &example); err != nil {
		t.Fatal(err)
	}
	withGPU := example.DeepCopy()
	withGPU.Spec.Containers[0].Resources.Limits[corev1.ResourceName("nvidia.com/gpu")] = resource.MustParse("1")

	for _, tc := range []struct {
		name     string
		pod      *corev1.Pod
		wantVoid bool
	}{
		{"the example CPU notebook is hidden from the node's GPUs", &example, true},
		{"a notebook that requests a GPU keeps it", withGPU, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, got, err := mutate(t, set, tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			v, present := envOf(&got.Spec.Containers[0], profile.EnvNvidiaVisibleDevices)
			it, row := findItem(res, "env", profile.EnvNvidiaVisibleDevices)
			if tc.wantVoid {
				if v != "void" || !row || it.Action != Applied || it.Where != `container "notebook"` {
					t.Errorf("want %s=void applied on container \"notebook\", got value %q (set %v), row %+v (found %v)",
						profile.EnvNvidiaVisibleDevices, v, present, it, row)
				}
				return
			}
			if present || row {
				t.Errorf("a GPU notebook got %s=%q, row %+v", profile.EnvNvidiaVisibleDevices, v, it)
			}
		})
	}
}
