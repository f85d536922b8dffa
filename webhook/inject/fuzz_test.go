package inject

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// FuzzMutate feeds arbitrary Pod JSON through decode + mutate: it must never panic, and when
// a patch is returned, applying it to the input must give the decided Pod and a second call
// must return nothing. The seeds (the example Pods and odd shapes) run in every `go test`.
func FuzzMutate(f *testing.F) {
	files, _ := filepath.Glob("../examples/pods/*.yaml")
	for _, name := range files {
		y, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j)
	}
	for _, s := range []string{
		`{}`, `null`, `{"metadata":{"labels":{"ai.example.com/profile":"pytorch-training"}}}`,
		`{"metadata":{"labels":{"ai.example.com/profile":"llm-inference"}},"spec":{"containers":[{"name":"a","resources":{"limits":{"nvidia.com/gpu":"1"}}}],"volumes":[]}}`,
		`{"metadata":{"annotations":{"ai.example.com/profile":"notebook"}},"spec":{"containers":[{"name":"notebook","env":[{"name":"HF_HOME"}],"volumeMounts":[{"name":"x","mountPath":"/cache"}]}]}}`,
		`{"metadata":{"labels":{"ai.example.com/profile":"pytorch-training"}},"spec":{"affinity":{"nodeAffinity":{}},"containers":[{"name":"pytorch","resources":{"limits":{"cpu":"0","memory":"1"}}}]}}`,
		`{"metadata":{"labels":{"ai.example.com/profile":"pytorch-training"}},"spec":{"containers":[{"name":"pytorch","env":[{"name":"NCCL_DEBUG","value":"INFO"},{"name":"NCCL_DEBUG","value":"WARN"}],"envFrom":[{"configMapRef":{"name":"c"}}]}]}}`,
		`{"metadata":{"labels":{"ai.example.com/profile":"llm-inference"}},"spec":{"hostIPC":true,"hostNetwork":true,"runtimeClassName":"kata","overhead":{"cpu":"250m"},"containers":[{"name":"a","resources":{"limits":{"nvidia.com/mig-1g.10gb":"1"}},"volumeMounts":[{"name":"m","mountPath":"/models/"}]}],"volumes":[{"name":"m","emptyDir":{}}]}}`,
		`{"metadata":{"annotations":{"ai.example.com/inject":" Off "},"labels":{"ai.example.com/profile":"notebook"}},"spec":{"containers":[{"name":"notebook"}]}}`,
		`{"metadata":{"labels":{"ai.example.com/profile":"pytorch-training"}},"spec":{"resources":{"limits":{"cpu":"3","memory":"6Gi"}},"volumes":[{"name":"dshm","emptyDir":{"medium":"Memory"}}],"containers":[{"name":"pytorch","resources":{"limits":{"nvidia.com/gpu":"0"}},"volumeMounts":[{"name":"dshm","mountPath":"/scratch"}]},{"name":"logs"}]}}`,
	} {
		f.Add([]byte(s))
	}
	set, err := profile.Parse(profile.Examples, profile.DefaultDomain)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var pod corev1.Pod
		if json.Unmarshal(raw, &pod) != nil {
			return
		}
		// Re-encode: the patch applies to what the API server sends, a well-formed Pod.
		original, err := json.Marshal(&pod)
		if err != nil {
			return
		}
		mutated := pod.DeepCopy()
		res, err := Mutate(mutated, set, testKeys)
		if err != nil || len(res.Patch) == 0 {
			return
		}
		patched := applyPatch(t, original, res)
		if !equality.Semantic.DeepEqual(patched, mutated) {
			t.Fatalf("patch and decision disagree for %s", raw)
		}
		if again, err := Mutate(patched.DeepCopy(), set, testKeys); err != nil || len(again.Patch) != 0 {
			t.Fatalf("not idempotent for %s: %v %+v", raw, err, again)
		}
	})
}
