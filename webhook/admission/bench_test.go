package admission

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

func benchmarkHandler(b *testing.B, pod *corev1.Pod) {
	h := newHandler(&testing.T{})
	raw, err := json.Marshal(pod)
	if err != nil {
		b.Fatal(err)
	}
	body := reviewJSON(&testing.T{}, func(r *admissionv1.AdmissionReview) { r.Request.Object.Raw = raw })
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"patch"`)) {
			b.Fatalf("not mutated: %d %s", rec.Code, rec.Body.Bytes())
		}
	}
}

// BenchmarkHandlerTypicalGPUPod: decode, mutate and encode one training Pod's review.
func BenchmarkHandlerTypicalGPUPod(b *testing.B) {
	benchmarkHandler(b, benchPod(1, 4))
}

// BenchmarkHandlerPathologicalPod: 20 containers, 1,000 env vars in all.
func BenchmarkHandlerPathologicalPod(b *testing.B) {
	benchmarkHandler(b, benchPod(20, 50))
}

func benchPod(containers, envPerContainer int) *corev1.Pod {
	pod := &corev1.Pod{}
	pod.APIVersion, pod.Kind, pod.GenerateName = "v1", "Pod", "train-"
	pod.Labels = map[string]string{"ai.example.com/profile": "pytorch-training"}
	for i := 0; i < containers; i++ {
		c := corev1.Container{Name: fmt.Sprintf("trainer-%d", i), Image: "pytorch"}
		if i == 0 {
			c.Name = "pytorch"
		}
		for j := 0; j < envPerContainer; j++ {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", j), Value: "value"})
		}
		pod.Spec.Containers = append(pod.Spec.Containers, c)
	}
	return pod
}
