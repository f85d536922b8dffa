// Package profile defines the named profiles an operator writes (a YAML file, in the cluster a
// mounted ConfigMap), validates them once at load time, and hands the injector a ready Set.
// It knows nothing of HTTP or admission.
package profile

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Examples is the shipped example profile file (PyTorch training, LLM inference, notebook).
//
//go:embed examples.yaml
var Examples []byte

// DefaultGPUResource is the extended resource a profile treats as "the GPU" unless it names another.
const DefaultGPUResource corev1.ResourceName = "nvidia.com/gpu"

// File is the document operators write.
type File struct {
	// DefaultProfile, when set, applies to Pods that request the profile's GPU resource
	// and name no profile themselves.
	DefaultProfile string    `json:"defaultProfile,omitempty"`
	Profiles       []Profile `json:"profiles"`
}

// Profile is one named set of settings.
type Profile struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Containers chooses which containers receive the container settings.
	Containers Targets `json:"containers,omitempty"`
	// GPUResource is the extended resource that marks a container as a GPU consumer.
	GPUResource corev1.ResourceName `json:"gpuResource,omitempty"`
	Pod         PodSettings         `json:"pod,omitempty"`
	Container   ContainerSettings   `json:"container,omitempty"`
	Derived     Derived             `json:"derived,omitempty"`
	// Enforce lists the settings where the profile wins over the Pod: a field name
	// ("runtimeClassName", "env") or a field and key ("env:NCCL_DEBUG", "limits:nvidia.com/gpu").
	Enforce []string `json:"enforce,omitempty"`
}

// Selection modes for Targets.Select.
const (
	SelectAll   = "all"   // every app container
	SelectNamed = "named" // the containers listed in Names
	SelectGPU   = "gpu"   // containers that request a GPU in the Pod as submitted (before the profile's limits)
)

// Targets says which containers a profile's container settings reach.
type Targets struct {
	Select string   `json:"select,omitempty"`
	Names  []string `json:"names,omitempty"`
	// InitContainers includes regular (run-to-completion) init containers.
	InitContainers bool `json:"initContainers,omitempty"`
	// Sidecars includes native sidecars: init containers with restartPolicy Always.
	Sidecars bool `json:"sidecars,omitempty"`
}

// PodSettings are set once per Pod.
type PodSettings struct {
	Labels           map[string]string `json:"labels,omitempty"`
	Annotations      map[string]string `json:"annotations,omitempty"`
	RuntimeClassName string            `json:"runtimeClassName,omitempty"`
	// RuntimeClassWhen says which Pods get RuntimeClassName: "always" (the default, also when
	// empty) or "gpu", only Pods that request a GPU once the profile's limits are added.
	RuntimeClassWhen  string              `json:"runtimeClassWhen,omitempty"`
	SchedulerName     string              `json:"schedulerName,omitempty"`
	PriorityClassName string              `json:"priorityClassName,omitempty"`
	NodeSelector      map[string]string   `json:"nodeSelector,omitempty"`
	Tolerations       []corev1.Toleration `json:"tolerations,omitempty"`
	Affinity          NodeAffinity        `json:"affinity,omitempty"`
	Volumes           []corev1.Volume     `json:"volumes,omitempty"`
}

// NodeAffinity is what a profile adds to the Pod's node affinity.
type NodeAffinity struct {
	// Required requirements are ANDed into every required node selector term of the Pod
	// (or form its only term), so a profile narrows placement and never widens it.
	Required []corev1.NodeSelectorRequirement `json:"required,omitempty"`
	// Preferred terms are appended when the Pod has no identical term.
	Preferred []corev1.PreferredSchedulingTerm `json:"preferred,omitempty"`
}

// ContainerSettings are set on every targeted container.
type ContainerSettings struct {
	// Limits are extended-resource limits (e.g. nvidia.com/gpu). Extended resources
	// cannot be overcommitted, so the request follows the limit when the Pod sets none.
	Limits       corev1.ResourceList  `json:"limits,omitempty"`
	Env          []corev1.EnvVar      `json:"env,omitempty"`
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// ResourceClaims request devices through Dynamic Resource Allocation instead of limits:
	// each becomes an entry of the Pod's spec.resourceClaims (from its
	// resourceClaimTemplateName, one claim per Pod) and every targeted container lists it in
	// resources.claims, so the targeted containers share the claimed devices.
	ResourceClaims []corev1.PodResourceClaim `json:"resourceClaims,omitempty"`
}

// Derived values are computed from the Pod being admitted.
type Derived struct {
	Shm *Shm `json:"shm,omitempty"`
	// OMPNumThreadsFromCPU sets OMP_NUM_THREADS to the container's whole CPU limit (at least 1).
	OMPNumThreadsFromCPU bool `json:"ompNumThreadsFromCPU,omitempty"`
	// HideGPUsFromNonGPUContainers sets NVIDIA_VISIBLE_DEVICES=void on every container of a GPU
	// Pod that requests no GPU: CUDA images default to "all", which bypasses the device plugin.
	HideGPUsFromNonGPUContainers bool `json:"hideGPUsFromNonGPUContainers,omitempty"`
}

// Shm is a memory-backed /dev/shm sized from the memory limit.
type Shm struct {
	// Fraction of the largest memory limit among targeted containers, in (0, 1].
	Fraction float64 `json:"fraction"`
	// Default size when no targeted container has a memory limit. Zero leaves the size unbounded
	// (not recommended: it counts against node memory).
	Default resource.Quantity `json:"default,omitempty"`
	// MountPath defaults to /dev/shm; VolumeName to dshm.
	MountPath  string `json:"mountPath,omitempty"`
	VolumeName string `json:"volumeName,omitempty"`
}

// Values of PodSettings.RuntimeClassWhen. Empty means always; it is not filled in at load, so
// the hash (and the stamp) of a profile that does not use it stays what it was.
const (
	RuntimeClassAlways = "always"
	RuntimeClassGPU    = "gpu"
)

// Defaults applied at load time, in one place.
const (
	defaultShmMountPath  = "/dev/shm"
	defaultShmVolumeName = "dshm"
)

func (p *Profile) applyDefaults() {
	if p.Containers.Select == "" {
		p.Containers.Select = SelectAll
	}
	if p.GPUResource == "" {
		p.GPUResource = DefaultGPUResource
	}
	if s := p.Derived.Shm; s != nil {
		if s.MountPath == "" {
			s.MountPath = defaultShmMountPath
		}
		if s.VolumeName == "" {
			s.VolumeName = defaultShmVolumeName
		}
	}
}

// Hash is a short, stable digest of the profile after defaults, stamped on mutated Pods so
// users and tools can see which version of a profile was applied.
func (p *Profile) Hash() string {
	b, err := json.Marshal(p) // maps marshal with sorted keys: stable
	if err != nil {
		panic("profile: marshal of a validated profile failed: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10]
}

// Set is a validated, immutable collection of profiles.
type Set struct {
	byName         map[string]*Compiled
	names          []string
	defaultProfile string
}

// StampSep separates the profile's name from its hash in a Stamp.
const StampSep = "@"

// Compiled is a validated profile with what the injector needs precomputed.
type Compiled struct {
	Profile
	// Stamp is "<name>@<hash>", the value of the injected annotation.
	Stamp string
	// enforced holds "field" and "field:key" entries.
	enforced map[string]bool
}

// Enforced reports whether the profile wins over the Pod for field (and key, if any).
func (c *Compiled) Enforced(field, key string) bool {
	if c.enforced[field] {
		return true
	}
	return key != "" && c.enforced[field+":"+key]
}

// Names returns the profile names, sorted.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Get returns the named profile.
func (s *Set) Get(name string) (*Compiled, bool) {
	c, ok := s.byName[name]
	return c, ok
}

// Default returns the profile for GPU Pods that name none, if one is configured.
func (s *Set) Default() (*Compiled, bool) {
	if s.defaultProfile == "" {
		return nil, false
	}
	return s.Get(s.defaultProfile)
}

// Len is the number of profiles.
func (s *Set) Len() int { return len(s.names) }

func newSet(f *File) *Set {
	s := &Set{byName: make(map[string]*Compiled, len(f.Profiles)), defaultProfile: f.DefaultProfile}
	for i := range f.Profiles {
		p := f.Profiles[i]
		c := &Compiled{Profile: p, enforced: make(map[string]bool, len(p.Enforce))}
		c.Stamp = p.Name + StampSep + c.Profile.Hash()
		for _, e := range p.Enforce {
			c.enforced[e] = true
		}
		s.byName[p.Name] = c
		s.names = append(s.names, p.Name)
	}
	sort.Strings(s.names)
	return s
}
