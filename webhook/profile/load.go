package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Parse reads a profile file (YAML or JSON), applies defaults and validates it. Unknown fields
// are errors, so a typo never silently drops a setting. The error lists every problem, each
// naming the profile and field.
func Parse(data []byte) (*Set, error) {
	j, err := yaml.YAMLToJSONStrict(data) // refuses duplicate keys
	if err != nil {
		return nil, fmt.Errorf("profiles: not valid YAML: %w", err)
	}
	var f File
	// The strict decoder reports unknown and duplicate fields with their path.
	strict, err := kjson.UnmarshalStrict(j, &f)
	if err != nil {
		return nil, fmt.Errorf("profiles: cannot read file: %w", err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("profiles: %w (check the spelling against README.md, Writing a profile)", errors.Join(strict...))
	}
	for i := range f.Profiles {
		f.Profiles[i].applyDefaults()
		f.Profiles[i].applyAPIDefaults()
	}
	if errs := validateFile(&f); len(errs) > 0 {
		return nil, &InvalidError{Errs: errs}
	}
	return newSet(&f), nil
}

// InvalidError lists every validation problem in a profile file.
type InvalidError struct{ Errs field.ErrorList }

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "profiles: %d problem(s) to fix:", len(e.Errs))
	for _, err := range e.Errs {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}

func validateFile(f *File) field.ErrorList {
	var errs field.ErrorList
	root := field.NewPath("profiles")
	if len(f.Profiles) == 0 {
		errs = append(errs, field.Required(root, "at least one profile"))
	}
	seen := map[string]bool{}
	for i := range f.Profiles {
		p := &f.Profiles[i]
		fp := root.Index(i)
		if p.Name != "" {
			fp = root.Key(p.Name)
		}
		if seen[p.Name] {
			errs = append(errs, field.Duplicate(fp.Child("name"), p.Name))
		}
		seen[p.Name] = true
		errs = append(errs, validateProfile(p, fp)...)
	}
	if f.DefaultProfile != "" && !seen[f.DefaultProfile] {
		errs = append(errs, field.NotFound(field.NewPath("defaultProfile"), f.DefaultProfile))
	}
	return errs
}

func validateProfile(p *Profile, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	if p.Name == "" {
		errs = append(errs, field.Required(fp.Child("name"), "a DNS label, e.g. pytorch-training"))
	} else {
		errs = appendMsgs(errs, fp.Child("name"), p.Name, validation.IsDNS1123Label(p.Name))
	}
	errs = append(errs, validateTargets(&p.Containers, fp.Child("containers"))...)
	errs = appendMsgs(errs, fp.Child("gpuResource"), p.GPUResource, validation.IsQualifiedName(string(p.GPUResource)))
	errs = append(errs, validatePod(&p.Pod, fp.Child("pod"))...)
	errs = append(errs, validateContainer(p, fp.Child("container"))...)
	errs = append(errs, validateDerived(p, fp.Child("derived"))...)
	errs = append(errs, validateEnforce(p, fp.Child("enforce"))...)
	return errs
}

func validateTargets(t *Targets, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch t.Select {
	case SelectAll, SelectGPU:
		if len(t.Names) > 0 {
			errs = append(errs, field.Forbidden(fp.Child("names"), `only with select: named`))
		}
	case SelectNamed:
		if len(t.Names) == 0 {
			errs = append(errs, field.Required(fp.Child("names"), "select: named needs container names"))
		}
		for i, n := range t.Names {
			errs = appendMsgs(errs, fp.Child("names").Index(i), n, validation.IsDNS1123Label(n))
		}
	default:
		errs = append(errs, field.NotSupported(fp.Child("select"), t.Select, []string{SelectAll, SelectNamed, SelectGPU}))
	}
	return errs
}

func validatePod(s *PodSettings, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateLabels(s.Labels, fp.Child("labels"))...)
	errs = append(errs, validateAnnotations(s.Annotations, fp.Child("annotations"))...)
	for _, c := range []struct{ name, value string }{
		{"runtimeClassName", s.RuntimeClassName}, {"schedulerName", s.SchedulerName}, {"priorityClassName", s.PriorityClassName},
	} {
		if c.value != "" {
			errs = appendMsgs(errs, fp.Child(c.name), c.value, validation.IsDNS1123Subdomain(c.value))
		}
	}
	errs = append(errs, validateLabels(s.NodeSelector, fp.Child("nodeSelector"))...)
	for i := range s.Tolerations {
		errs = append(errs, validateToleration(&s.Tolerations[i], fp.Child("tolerations").Index(i))...)
	}
	for i := range s.Affinity.Required {
		errs = append(errs, validateRequirement(&s.Affinity.Required[i], fp.Child("affinity", "required").Index(i))...)
	}
	for i, t := range s.Affinity.Preferred {
		tp := fp.Child("affinity", "preferred").Index(i)
		if t.Weight < 1 || t.Weight > 100 {
			errs = append(errs, field.Invalid(tp.Child("weight"), t.Weight, "must be 1 to 100"))
		}
		if len(t.Preference.MatchExpressions) == 0 && len(t.Preference.MatchFields) == 0 {
			errs = append(errs, field.Required(tp.Child("preference"), "matchExpressions or matchFields"))
		}
		for j := range t.Preference.MatchExpressions {
			errs = append(errs, validateRequirement(&t.Preference.MatchExpressions[j], tp.Child("preference", "matchExpressions").Index(j))...)
		}
	}
	names := map[string]bool{}
	for i := range s.Volumes {
		v := &s.Volumes[i]
		vp := fp.Child("volumes").Index(i)
		errs = appendMsgs(errs, vp.Child("name"), v.Name, validation.IsDNS1123Label(v.Name))
		if names[v.Name] {
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		}
		names[v.Name] = true
		if n := countSources(&v.VolumeSource); n != 1 {
			errs = append(errs, field.Invalid(vp, v.Name, fmt.Sprintf("must set exactly one volume source (emptyDir, persistentVolumeClaim, ...), found %d", n)))
		}
	}
	return errs
}

// countSources counts the volume sources set, via the JSON form so new sources are covered too.
func countSources(src *corev1.VolumeSource) int {
	b, _ := json.Marshal(src)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return len(m)
}

func validateToleration(t *corev1.Toleration, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t.Key != "" {
		errs = appendMsgs(errs, fp.Child("key"), t.Key, validation.IsQualifiedName(t.Key))
	}
	switch t.Operator {
	case corev1.TolerationOpEqual, "":
		if t.Key == "" {
			errs = append(errs, field.Invalid(fp.Child("operator"), t.Operator, "an empty key needs operator Exists"))
		}
	case corev1.TolerationOpExists:
		if t.Value != "" {
			errs = append(errs, field.Invalid(fp.Child("value"), t.Value, "must be empty with operator Exists"))
		}
	default:
		errs = append(errs, field.NotSupported(fp.Child("operator"), t.Operator, []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
	}
	switch t.Effect {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		errs = append(errs, field.NotSupported(fp.Child("effect"), t.Effect, []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}))
	}
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		errs = append(errs, field.Invalid(fp.Child("tolerationSeconds"), *t.TolerationSeconds, "only with effect NoExecute"))
	}
	return errs
}

func validateRequirement(r *corev1.NodeSelectorRequirement, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = appendMsgs(errs, fp.Child("key"), r.Key, validation.IsQualifiedName(r.Key))
	switch r.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(r.Values) == 0 {
			errs = append(errs, field.Required(fp.Child("values"), "In and NotIn need values"))
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(r.Values) > 0 {
			errs = append(errs, field.Forbidden(fp.Child("values"), "Exists and DoesNotExist take no values"))
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(r.Values) != 1 {
			errs = append(errs, field.Required(fp.Child("values"), "Gt and Lt take exactly one integer value"))
		}
	default:
		errs = append(errs, field.NotSupported(fp.Child("operator"), r.Operator, []corev1.NodeSelectorOperator{
			corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists,
			corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt}))
	}
	return errs
}

func validateContainer(p *Profile, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	s := &p.Container
	for _, name := range slices.Sorted(maps.Keys(s.Limits)) {
		q := s.Limits[name]
		lp := fp.Child("limits").Key(string(name))
		errs = appendMsgs(errs, lp, name, validation.IsQualifiedName(string(name)))
		if q.Sign() <= 0 {
			errs = append(errs, field.Invalid(lp, q.String(), "must be positive"))
		}
		if isExtended(name) && q.MilliValue()%1000 != 0 {
			errs = append(errs, field.Invalid(lp, q.String(), "extended resources take whole numbers"))
		}
	}
	envNames := map[string]bool{}
	for i, e := range s.Env {
		ep := fp.Child("env").Index(i)
		errs = appendMsgs(errs, ep.Child("name"), e.Name, validation.IsEnvVarName(e.Name))
		if envNames[e.Name] {
			errs = append(errs, field.Duplicate(ep.Child("name"), e.Name))
		}
		envNames[e.Name] = true
		if e.Value != "" && e.ValueFrom != nil {
			errs = append(errs, field.Invalid(ep, e.Name, "set value or valueFrom, not both"))
		}
	}
	if p.Derived.OMPNumThreadsFromCPU && envNames[EnvOMPNumThreads] {
		errs = append(errs, field.Invalid(fp.Child("env"), EnvOMPNumThreads, "also derived by derived.ompNumThreadsFromCPU: keep one"))
	}
	if p.Derived.HideGPUsFromNonGPUContainers && envNames[EnvNvidiaVisibleDevices] {
		errs = append(errs, field.Invalid(fp.Child("env"), EnvNvidiaVisibleDevices, "conflicts with derived.hideGPUsFromNonGPUContainers"))
	}
	paths := map[string]bool{}
	if p.Derived.Shm != nil {
		paths[p.Derived.Shm.MountPath] = true
	}
	for i, m := range s.VolumeMounts {
		mp := fp.Child("volumeMounts").Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(mp.Child("name"), "the volume to mount"))
		}
		if !path.IsAbs(m.MountPath) {
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path"))
		}
		if paths[m.MountPath] {
			errs = append(errs, field.Duplicate(mp.Child("mountPath"), m.MountPath))
		}
		paths[m.MountPath] = true
	}
	return errs
}

// isExtended reports an extended resource: domain-prefixed outside kubernetes.io.
func isExtended(name corev1.ResourceName) bool {
	s := string(name)
	return strings.Contains(s, "/") && !strings.HasPrefix(s, "kubernetes.io/") && !strings.HasPrefix(s, "requests.")
}

func validateDerived(p *Profile, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	s := p.Derived.Shm
	if s == nil {
		return nil
	}
	sp := fp.Child("shm")
	if !(s.Fraction > 0 && s.Fraction <= 1) {
		errs = append(errs, field.Invalid(sp.Child("fraction"), s.Fraction, "must be in (0, 1], e.g. 0.5 for half the memory limit"))
	}
	if s.Default.Sign() < 0 {
		errs = append(errs, field.Invalid(sp.Child("default"), s.Default.String(), "must not be negative"))
	}
	if !path.IsAbs(s.MountPath) {
		errs = append(errs, field.Invalid(sp.Child("mountPath"), s.MountPath, "must be an absolute path"))
	}
	errs = appendMsgs(errs, sp.Child("volumeName"), s.VolumeName, validation.IsDNS1123Label(s.VolumeName))
	for _, v := range p.Pod.Volumes {
		if v.Name == s.VolumeName {
			errs = append(errs, field.Duplicate(sp.Child("volumeName"), s.VolumeName))
		}
	}
	return errs
}

func validateEnforce(p *Profile, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range p.Enforce {
		ep := fp.Index(i)
		name, key, hasKey := strings.Cut(e, ":")
		f, known := enforceFieldNamed(name)
		switch {
		case !known:
			errs = append(errs, field.NotSupported(ep, e, enforceableNames()))
		case hasKey && f.key == "":
			errs = append(errs, field.Invalid(ep, e, name+" takes no key"))
		case !f.sets(p, key):
			errs = append(errs, field.Invalid(ep, e, strings.TrimSpace("the profile sets no "+name+" "+key)))
		}
	}
	return errs
}

// Env var names the derived settings write.
const (
	EnvOMPNumThreads        = "OMP_NUM_THREADS"
	EnvNvidiaVisibleDevices = "NVIDIA_VISIBLE_DEVICES"
)

// validateLabels checks label keys and values in key order, each with its key in the path, so
// the same file always gives the same message.
func validateLabels(labels map[string]string, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		kp := fp.Key(k)
		errs = appendMsgs(errs, kp, k, validation.IsQualifiedName(k))
		errs = appendMsgs(errs, kp, labels[k], validation.IsValidLabelValue(labels[k]))
	}
	return errs
}

// validateAnnotations checks annotation keys in key order, and their total size as the API does.
func validateAnnotations(annotations map[string]string, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		errs = appendMsgs(errs, fp.Key(k), k, validation.IsQualifiedName(strings.ToLower(k)))
	}
	if err := apivalidation.ValidateAnnotationsSize(annotations); err != nil {
		errs = append(errs, field.TooLong(fp, "", apivalidation.TotalAnnotationSizeLimitB))
	}
	return errs
}

func appendMsgs[T any](errs field.ErrorList, fp *field.Path, value T, msgs []string) field.ErrorList {
	for _, m := range msgs {
		errs = append(errs, field.Invalid(fp, value, m))
	}
	return errs
}
