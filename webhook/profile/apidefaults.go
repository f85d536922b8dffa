package profile

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// The API server fills in defaults before webhooks see a Pod, and again after each webhook's
// patch. A profile's volumes and env vars are given the same defaults when loaded, so an item
// the webhook injected earlier compares equal to the profile's on reinvocation, instead of
// looking like the user's own, different value. These are the defaults of the core/v1 types a
// profile is likely to carry (kubernetes pkg/apis/core/v1/defaults.go).

// defaultFileMode is the API default for secret, configMap, projected and downwardAPI volumes.
const defaultFileMode int32 = 0o644

// DefaultVolume applies the API server's defaults to a volume.
func DefaultVolume(v *corev1.Volume) {
	switch s := &v.VolumeSource; {
	case s.Secret != nil && s.Secret.DefaultMode == nil:
		s.Secret.DefaultMode = ptr.To(defaultFileMode)
	case s.ConfigMap != nil && s.ConfigMap.DefaultMode == nil:
		s.ConfigMap.DefaultMode = ptr.To(defaultFileMode)
	case s.DownwardAPI != nil:
		if s.DownwardAPI.DefaultMode == nil {
			s.DownwardAPI.DefaultMode = ptr.To(defaultFileMode)
		}
		defaultDownwardItems(s.DownwardAPI.Items)
	case s.Projected != nil:
		if s.Projected.DefaultMode == nil {
			s.Projected.DefaultMode = ptr.To(defaultFileMode)
		}
		for i := range s.Projected.Sources {
			if d := s.Projected.Sources[i].DownwardAPI; d != nil {
				defaultDownwardItems(d.Items)
			}
		}
	case s.HostPath != nil && s.HostPath.Type == nil:
		s.HostPath.Type = ptr.To(corev1.HostPathUnset)
	case s.Ephemeral != nil && s.Ephemeral.VolumeClaimTemplate != nil && s.Ephemeral.VolumeClaimTemplate.Spec.VolumeMode == nil:
		s.Ephemeral.VolumeClaimTemplate.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
	}
}

func defaultDownwardItems(items []corev1.DownwardAPIVolumeFile) {
	for i := range items {
		defaultFieldRef(items[i].FieldRef)
	}
}

func defaultFieldRef(f *corev1.ObjectFieldSelector) {
	if f != nil && f.APIVersion == "" {
		f.APIVersion = "v1"
	}
}

// DefaultEnvVar applies the API server's defaults to an env var.
func DefaultEnvVar(e *corev1.EnvVar) {
	if e.ValueFrom != nil {
		defaultFieldRef(e.ValueFrom.FieldRef)
	}
}

func (p *Profile) applyAPIDefaults() {
	for i := range p.Pod.Volumes {
		DefaultVolume(&p.Pod.Volumes[i])
	}
	for i := range p.Container.Env {
		DefaultEnvVar(&p.Container.Env[i])
	}
}
