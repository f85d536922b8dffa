package profile

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

func corpusPod() *corev1.Pod {
	volumes, env := DefaultingCorpus()
	return &corev1.Pod{Spec: corev1.PodSpec{
		Volumes: volumes,
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox", Env: env,
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}}}},
		Containers: []corev1.Container{{Name: "main", Image: "pytorch", Env: env,
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{"cpu": resource.MustParse("1.0001"), "memory": resource.MustParse("8Gi")},
				Requests: corev1.ResourceList{"memory": resource.MustParse("4Gi")}}}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox", Env: env}}},
	}}
}

// DefaultPod fills in what the API server fills in, for every volume source and env var of the
// corpus and the container resources.
func TestDefaultPodFillsInWhatTheAPIServerFillsIn(t *testing.T) {
	pod := corpusPod()
	DefaultPod(pod)
	vol := map[string]*corev1.VolumeSource{}
	for i := range pod.Spec.Volumes {
		vol[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i].VolumeSource
	}
	main := &pod.Spec.Containers[0]
	checks := []struct {
		name string
		ok   bool
	}{
		{"schedulerName", pod.Spec.SchedulerName == "default-scheduler"},
		{"no source becomes emptyDir", vol["no-source"].EmptyDir != nil},
		{"hostPath type", *vol["host-path"].HostPath.Type == corev1.HostPathUnset},
		{"configMap defaultMode", *vol["config-map"].ConfigMap.DefaultMode == 0o644},
		{"configMap items untouched", vol["config-map"].ConfigMap.Items[0].Mode == nil},
		{"secret defaultMode", *vol["secret"].Secret.DefaultMode == 0o644},
		{"downwardAPI defaultMode", *vol["downward-api"].DownwardAPI.DefaultMode == 0o644},
		{"downwardAPI fieldRef apiVersion", vol["downward-api"].DownwardAPI.Items[0].FieldRef.APIVersion == "v1"},
		{"downwardAPI divisor untouched", vol["downward-api"].DownwardAPI.Items[1].ResourceFieldRef.Divisor.IsZero()},
		{"projected defaultMode", *vol["projected"].Projected.DefaultMode == 0o644},
		{"projected token expirationSeconds", *vol["projected"].Projected.Sources[0].ServiceAccountToken.ExpirationSeconds == 3600},
		{"projected fieldRef apiVersion", vol["projected"].Projected.Sources[1].DownwardAPI.Items[0].FieldRef.APIVersion == "v1"},
		{"image without tag: Always", vol["image-untagged"].Image.PullPolicy == corev1.PullAlways},
		{"image :latest: Always", vol["image-latest"].Image.PullPolicy == corev1.PullAlways},
		{"image :v1: IfNotPresent", vol["image-tagged"].Image.PullPolicy == corev1.PullIfNotPresent},
		{"image by digest: IfNotPresent", vol["image-digest"].Image.PullPolicy == corev1.PullIfNotPresent},
		{"iscsi interface", vol["iscsi"].ISCSI.ISCSIInterface == "default"},
		{"rbd pool, user, keyring", vol["rbd"].RBD.RBDPool == "rbd" && vol["rbd"].RBD.RadosUser == "admin" && vol["rbd"].RBD.Keyring == "/etc/ceph/keyring"},
		{"azureDisk caching, fsType, readOnly, kind", *vol["azure-disk"].AzureDisk.CachingMode == corev1.AzureDataDiskCachingReadWrite &&
			*vol["azure-disk"].AzureDisk.FSType == "ext4" && !*vol["azure-disk"].AzureDisk.ReadOnly && *vol["azure-disk"].AzureDisk.Kind == corev1.AzureSharedBlobDisk},
		{"scaleIO storageMode, fsType", vol["scale-io"].ScaleIO.StorageMode == "ThinProvisioned" && vol["scale-io"].ScaleIO.FSType == "xfs"},
		{"ephemeral volumeMode", *vol["ephemeral"].Ephemeral.VolumeClaimTemplate.Spec.VolumeMode == corev1.PersistentVolumeFilesystem},
		{"env fieldRef apiVersion", main.Env[1].ValueFrom.FieldRef.APIVersion == "v1" && main.Env[2].ValueFrom.FieldRef.APIVersion == "v1"},
		{"init container env", pod.Spec.InitContainers[0].Env[1].ValueFrom.FieldRef.APIVersion == "v1"},
		{"ephemeral container env", pod.Spec.EphemeralContainers[0].Env[1].ValueFrom.FieldRef.APIVersion == "v1"},
		{"request follows a limit without one", main.Resources.Requests.Cpu().String() == "1001m"},
		{"an existing request stays", main.Resources.Requests.Memory().String() == "4Gi"},
		{"init container request follows its limit", pod.Spec.InitContainers[0].Resources.Requests.Name("nvidia.com/gpu", resource.DecimalSI).String() == "1"},
		{"limits round up to a thousandth", main.Resources.Limits.Cpu().String() == "1001m"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not defaulted as the API server does", c.name)
		}
	}
}

// The API server defaults what it sends us; defaulting again must change nothing, or the
// webhook would see differences that are not there.
func TestDefaultingTwiceChangesNothing(t *testing.T) {
	once := corpusPod()
	DefaultPod(once)
	twice := once.DeepCopy()
	DefaultPod(twice)
	if !equality.Semantic.DeepEqual(once, twice) {
		a, _ := yaml.Marshal(once)
		b, _ := yaml.Marshal(twice)
		t.Fatalf("second defaulting changed the Pod:\n%s\nthen\n%s", a, b)
	}
}

// The corpus must be valid (a real API server must accept it): every volume and env var passes
// the profile's own Kubernetes rules, and loads with the same defaults DefaultPod gives.
func TestDefaultingCorpusIsAValidProfile(t *testing.T) {
	volumes, env := DefaultingCorpus()
	volumes = volumes[1:] // a profile must name a source; the API would default "no-source"
	doc := map[string]any{"profiles": []any{map[string]any{"name": "corpus",
		"pod": map[string]any{"volumes": volumes}, "container": map[string]any{"env": env}}}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	set, err := Parse(b, testDomain)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := set.Get("corpus")
	pod := &corev1.Pod{Spec: corev1.PodSpec{Volumes: volumes, Containers: []corev1.Container{{Name: "main", Env: env}}}}
	DefaultPod(pod)
	if !equality.Semantic.DeepEqual(p.Pod.Volumes, pod.Spec.Volumes) || !equality.Semantic.DeepEqual(p.Container.Env, pod.Spec.Containers[0].Env) {
		t.Fatal("a loaded profile's volumes and env differ from DefaultPod's")
	}
}

func TestImagePullPolicyDefault(t *testing.T) {
	for ref, want := range map[string]corev1.PullPolicy{
		"llama":                  corev1.PullAlways,
		"llama:latest":           corev1.PullAlways,
		"registry:5000/llama":    corev1.PullAlways,
		"registry:5000/llama:v1": corev1.PullIfNotPresent,
		"llama@sha256:" + strings.Repeat("a", 64):        corev1.PullIfNotPresent,
		"llama:latest@sha256:" + strings.Repeat("a", 64): corev1.PullAlways,
		"Not A Reference": corev1.PullIfNotPresent,
	} {
		t.Run(fmt.Sprint(ref), func(t *testing.T) {
			if got := imagePullPolicy(ref); got != want {
				t.Fatalf("%s: got %s, want %s", ref, got, want)
			}
		})
	}
}
