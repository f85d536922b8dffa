package profile

import (
	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// The one copy of the API server's defaults for what a profile or the injector touches. The API
// server fills them in before webhooks see a Pod, and again after each webhook's patch; a
// profile's volumes, env vars and limits get them when loaded, so an item the webhook injected
// earlier compares equal to the profile's on reinvocation instead of looking like the user's
// own, different value; the offline CLI applies them to the Pod before deciding, so it decides
// as the cluster does. They follow kubernetes pkg/apis/core/v1/defaults.go and its generated
// SetObjectDefaults_Pod (v1.37); a control-plane test compares them with a real API server
// (DefaultingCorpus). Defaults of fields the injector never reads (probes, ports, DNS policy,
// termination messages, ...) are left to the API server.

// DefaultPod applies the API server's defaults to the parts of a Pod the injector reads: the
// scheduler name, volumes, env vars and container resources (a limit without a request gets an
// equal request). Applying it to a Pod the API server already defaulted changes nothing.
func DefaultPod(pod *corev1.Pod) {
	spec := &pod.Spec
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	for i := range spec.Volumes {
		DefaultVolume(&spec.Volumes[i])
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i], true)
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i], true)
	}
	for i := range spec.EphemeralContainers {
		c := corev1.Container(spec.EphemeralContainers[i].EphemeralContainerCommon)
		defaultContainer(&c, false) // ephemeral containers take no resources
		spec.EphemeralContainers[i].EphemeralContainerCommon = corev1.EphemeralContainerCommon(c)
	}
}

func defaultContainer(c *corev1.Container, requestsFromLimits bool) {
	for i := range c.Env {
		DefaultEnvVar(&c.Env[i])
	}
	roundUpToMilli(c.Resources.Limits)
	roundUpToMilli(c.Resources.Requests)
	if requestsFromLimits && c.Resources.Limits != nil {
		if c.Resources.Requests == nil {
			c.Resources.Requests = corev1.ResourceList{}
		}
		for name, q := range c.Resources.Limits {
			if _, ok := c.Resources.Requests[name]; !ok {
				c.Resources.Requests[name] = q.DeepCopy()
			}
		}
	}
}

// roundUpToMilli: the API server keeps no precision below a thousandth (1.0001 becomes 1001m).
func roundUpToMilli(l corev1.ResourceList) {
	for name, q := range l {
		q.RoundUp(resource.Milli)
		l[name] = q
	}
}

// DefaultVolume applies the API server's defaults to a volume. A volume with no source becomes
// an emptyDir, as in the API.
func DefaultVolume(v *corev1.Volume) {
	s := &v.VolumeSource
	if ptr.AllPtrFieldsNil(s) {
		s.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	if s.HostPath != nil && s.HostPath.Type == nil {
		s.HostPath.Type = ptr.To(corev1.HostPathUnset)
	}
	if s.Secret != nil && s.Secret.DefaultMode == nil {
		s.Secret.DefaultMode = ptr.To(corev1.SecretVolumeSourceDefaultMode)
	}
	if s.ConfigMap != nil && s.ConfigMap.DefaultMode == nil {
		s.ConfigMap.DefaultMode = ptr.To(corev1.ConfigMapVolumeSourceDefaultMode)
	}
	if d := s.DownwardAPI; d != nil {
		if d.DefaultMode == nil {
			d.DefaultMode = ptr.To(corev1.DownwardAPIVolumeSourceDefaultMode)
		}
		defaultDownwardItems(d.Items)
	}
	if p := s.Projected; p != nil {
		if p.DefaultMode == nil {
			p.DefaultMode = ptr.To(corev1.ProjectedVolumeSourceDefaultMode)
		}
		for i := range p.Sources {
			if d := p.Sources[i].DownwardAPI; d != nil {
				defaultDownwardItems(d.Items)
			}
			if t := p.Sources[i].ServiceAccountToken; t != nil && t.ExpirationSeconds == nil {
				t.ExpirationSeconds = ptr.To[int64](3600) // one hour
			}
		}
	}
	if s.ISCSI != nil && s.ISCSI.ISCSIInterface == "" {
		s.ISCSI.ISCSIInterface = "default"
	}
	if r := s.RBD; r != nil {
		if r.RBDPool == "" {
			r.RBDPool = "rbd"
		}
		if r.RadosUser == "" {
			r.RadosUser = "admin"
		}
		if r.Keyring == "" {
			r.Keyring = "/etc/ceph/keyring"
		}
	}
	if d := s.AzureDisk; d != nil {
		if d.CachingMode == nil {
			d.CachingMode = ptr.To(corev1.AzureDataDiskCachingReadWrite)
		}
		if d.FSType == nil {
			d.FSType = ptr.To("ext4")
		}
		if d.ReadOnly == nil {
			d.ReadOnly = ptr.To(false)
		}
		if d.Kind == nil {
			d.Kind = ptr.To(corev1.AzureSharedBlobDisk)
		}
	}
	if sio := s.ScaleIO; sio != nil {
		if sio.StorageMode == "" {
			sio.StorageMode = "ThinProvisioned"
		}
		if sio.FSType == "" {
			sio.FSType = "xfs"
		}
	}
	if e := s.Ephemeral; e != nil && e.VolumeClaimTemplate != nil {
		spec := &e.VolumeClaimTemplate.Spec
		if spec.VolumeMode == nil {
			spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
		}
		roundUpToMilli(spec.Resources.Limits)
		roundUpToMilli(spec.Resources.Requests)
	}
	if img := s.Image; img != nil && img.PullPolicy == "" {
		img.PullPolicy = imagePullPolicy(img.Reference)
	}
}

// imagePullPolicy is the default for an image reference: Always for :latest or no tag and no
// digest, else IfNotPresent (also for a reference that does not parse, as the API server does).
func imagePullPolicy(ref string) corev1.PullPolicy {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return corev1.PullIfNotPresent
	}
	tagged, hasTag := named.(reference.Tagged)
	_, hasDigest := named.(reference.Digested)
	if hasTag && tagged.Tag() == "latest" || !hasTag && !hasDigest {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
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
	if e.ValueFrom == nil {
		return
	}
	defaultFieldRef(e.ValueFrom.FieldRef)
	if f := e.ValueFrom.FileKeyRef; f != nil && f.Optional == nil {
		f.Optional = ptr.To(false)
	}
}

// applyAPIDefaults gives the profile's own values the defaults they will have in a Pod. A
// volume without a source is left so for validation to refuse: the API would make it an
// emptyDir, but in a profile it is almost always a mistake.
func (p *Profile) applyAPIDefaults() {
	for i := range p.Pod.Volumes {
		if !ptr.AllPtrFieldsNil(&p.Pod.Volumes[i].VolumeSource) {
			DefaultVolume(&p.Pod.Volumes[i])
		}
	}
	for i := range p.Container.Env {
		DefaultEnvVar(&p.Container.Env[i])
	}
	roundUpToMilli(p.Container.Limits)
}
