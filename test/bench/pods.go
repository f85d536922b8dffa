package bench

import (
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The typical GPU training Pod: the shipped example as a user writes it (B4 creates it), and
// as the real kube-apiserver hands it to a mutating webhook on CREATE (B1-B3 time that):
// defaulted, with what the admission plugins before webhooks add (the service account token
// volume, the not-ready/unreachable tolerations, the priority) and the create's managed
// fields. Webhooks decode all of it, so it belongs in what they are timed on.
// TestTheTypicalPodIsWhatTheAPIServerSendsAWebhook captures the second from the real API
// server and keeps the file current (-update).
const (
	TypicalPodFile  = "webhook/examples/pods/pytorch-training.yaml"
	AdmittedPodFile = "test/bench/testdata/pytorch-training.admitted.json"
)

// ReadPod reads a Pod from file (YAML or JSON, relative to root); unknown fields are errors.
func ReadPod(root, file string) (*corev1.Pod, error) {
	data, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return nil, err
	}
	pod := &corev1.Pod{}
	if err := yaml.UnmarshalStrict(data, pod); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return pod, nil
}

// WithEnv returns pod with the training container carrying n environment variables in
// total: the user's own first, then generated ones.
func WithEnv(pod *corev1.Pod, n int) *corev1.Pod {
	pod = pod.DeepCopy()
	c := &pod.Spec.Containers[0]
	for i := len(c.Env); i < n; i++ {
		c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("APP_SETTING_%05d", i), Value: fmt.Sprintf("value-%d", i)})
	}
	return pod
}

// WithContainers returns pod with n containers: the training container first, then
// copies of its last container (a small metrics sidecar) under distinct names.
func WithContainers(pod *corev1.Pod, n int) *corev1.Pod {
	pod = pod.DeepCopy()
	cs := pod.Spec.Containers
	last := cs[len(cs)-1]
	for i := len(cs); i < n; i++ {
		c := *last.DeepCopy()
		c.Name = fmt.Sprintf("sidecar-%02d", i)
		cs = append(cs, c)
	}
	pod.Spec.Containers = cs
	return pod
}

// Shape is one Pod of B2.
type Shape struct {
	Key        string // short name for tables, e.g. "env-1000"
	Title      string
	EnvVars    int // environment variables of the training container
	Containers int
	Pod        *corev1.Pod // as admitted (AdmittedPodFile)
}

// series is a growth series of B2: shapes by key, and their size.
type series struct {
	name string
	keys []string
	unit func(Shape) int
}

var (
	envSeries       = series{"env vars per env var", []string{"typical", "env-250", "env-1000", "env-2500", "env-5000"}, func(s Shape) int { return s.EnvVars }}
	containerSeries = series{"containers per container", []string{"typical", "containers-5", "containers-10", "containers-20"}, func(s Shape) int { return s.Containers }}
)

// Shapes are the Pods of B2, grown from the typical Pod as admitted: the four named by the
// issue first (main table), then the other points of the growth series, which show whether
// time grows linearly.
func Shapes(base *corev1.Pod) []Shape {
	mk := func(key, title string, pod *corev1.Pod) Shape {
		return Shape{Key: key, Title: title, EnvVars: len(pod.Spec.Containers[0].Env), Containers: len(pod.Spec.Containers), Pod: pod}
	}
	return []Shape{
		mk("typical", "typical GPU training Pod", base),
		mk("env-1000", "1,000 env vars", WithEnv(base, 1000)),
		mk("containers-20", "20 containers", WithContainers(base, 20)),
		mk("env-5000", "5,000 env vars", WithEnv(base, 5000)),
		mk("env-250", "250 env vars", WithEnv(base, 250)),
		mk("env-2500", "2,500 env vars", WithEnv(base, 2500)),
		mk("containers-5", "5 containers", WithContainers(base, 5)),
		mk("containers-10", "10 containers", WithContainers(base, 10)),
	}
}
