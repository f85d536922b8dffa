package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// TypicalPodFile is the shipped example used as "a typical GPU training Pod".
const TypicalPodFile = "webhook/examples/pods/pytorch-training.yaml"

// ExamplePod reads the shipped example Pod as a user writes it.
func ExamplePod(root string) (*corev1.Pod, error) {
	data, err := os.ReadFile(filepath.Join(root, TypicalPodFile))
	if err != nil {
		return nil, err
	}
	pod := &corev1.Pod{}
	if err := yaml.UnmarshalStrict(data, pod); err != nil {
		return nil, fmt.Errorf("%s: %w", TypicalPodFile, err)
	}
	return pod, nil
}

// AsAdmitted returns the Pod as the API server hands it to a mutating webhook on CREATE:
// defaulted (pull policy, termination message, requests from limits, DNS and scheduler
// names), with what the built-in admission plugins that run before webhooks add (service
// account token volume, not-ready/unreachable tolerations, priority) and the managed fields
// of the create. Webhooks decode all of it, so it belongs in what they are timed on.
func AsAdmitted(user *corev1.Pod) *corev1.Pod {
	pod := user.DeepCopy()
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{
		Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: ptr.To(metav1.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), FieldsType: "FieldsV1",
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{},"f:ai.example.com/profile":{}}},` +
			`"f:spec":{"f:containers":{"k:{\"name\":\"trainer\"}":{".":{},"f:command":{},"f:env":{},"f:image":{},"f:name":{},"f:resources":{}}},` +
			`"f:restartPolicy":{}}}`)},
	}}
	spec := &pod.Spec
	tokenVolume := "kube-api-access-x7k2p"
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: tokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](3607), Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}})
	for i := range spec.Containers {
		c := &spec.Containers[i]
		c.ImagePullPolicy = corev1.PullIfNotPresent
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: tokenVolume, ReadOnly: true,
			MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"})
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	spec.DNSPolicy = corev1.DNSClusterFirst
	spec.SecurityContext = &corev1.PodSecurityContext{}
	spec.ServiceAccountName, spec.DeprecatedServiceAccount = "default", "default"
	spec.EnableServiceLinks = ptr.To(true)
	spec.Priority = ptr.To[int32](0)
	spec.PreemptionPolicy = ptr.To(corev1.PreemptLowerPriority)
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)})
	}
	profile.DefaultPod(pod) // scheduler name, volume modes, requests from limits
	return pod
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
	Pod        *corev1.Pod // as admitted (see AsAdmitted)
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

// Shapes are the Pods of B2: the four named by the issue first (main table), then the
// other points of the growth series, which show whether time grows linearly.
func Shapes(example *corev1.Pod) []Shape {
	base := AsAdmitted(example)
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
