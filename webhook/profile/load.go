package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"reflect"
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
// naming the profile and field. domain is the webhook's key domain (ai.example.com): a profile
// may not set the webhook's own keys under it.
func Parse(data []byte, domain string) (*Set, error) {
	j, err := yaml.YAMLToJSONStrict(data) // refuses duplicate keys
	if err != nil {
		return nil, fmt.Errorf("profiles: not valid YAML: %w", err)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber() // keep quantities written as numbers exactly as written
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("profiles: cannot read file: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, fmt.Errorf("profiles: the file must be an object with a list of profiles (profiles: [...]), not %s", kindOf(doc))
	}
	var problems []error
	var decodeErrs field.ErrorList
	doc, _ = checkTypes(doc, reflect.TypeFor[File](), nil, &decodeErrs)
	decodeErrs = append(decodeErrs, decodeEach(doc)...)
	if j, err = json.Marshal(doc); err != nil {
		return nil, fmt.Errorf("profiles: cannot read file: %w", err)
	}
	var f File
	// The strict decoder reports unknown fields with their path.
	strict, err := kjson.UnmarshalStrict(j, &f)
	if err != nil {
		return nil, fmt.Errorf("profiles: cannot read file: %w", err)
	}
	for _, e := range strict {
		problems = append(problems, fmt.Errorf("%w (check the spelling against README.md, Writing a profile)", e))
	}
	for _, e := range decodeErrs {
		problems = append(problems, e)
	}
	for i := range f.Profiles {
		f.Profiles[i].applyDefaults()
		f.Profiles[i].applyAPIDefaults()
	}
	for _, e := range sortedRuns(validateFile(&f, KeysFor(domain).all())) {
		// A value already reported was removed (a quantity stands in as "0"): what validation
		// says of it, or of what was under it, would only repeat the problem.
		if !slices.ContainsFunc(decodeErrs, func(d *field.Error) bool { return within(e.Field, d.Field) }) {
			problems = append(problems, e)
		}
	}
	if len(problems) > 0 {
		return nil, &InvalidError{Errs: problems}
	}
	return newSet(&f), nil
}

// decodeEach decodes every profile on its own after checkTypes, for what checkTypes leaves to
// the typed decode (types that read themselves, such as a timestamp in an ephemeral volume's
// template). A profile that still fails is reported under its name and kept only as its name,
// so the file's other profiles are still decoded and checked.
func decodeEach(doc any) field.ErrorList {
	list, _ := doc.(map[string]any)["profiles"].([]any)
	var errs field.ErrorList
	for i, raw := range list {
		j, err := json.Marshal(raw)
		if err == nil {
			var p Profile
			err = json.Unmarshal(j, &p)
		}
		if err == nil {
			continue
		}
		fp := field.NewPath("profiles").Index(i)
		if name := nameOf(raw); name != "" {
			fp = field.NewPath("profiles").Key(name)
			list[i] = map[string]any{"name": name}
		} else {
			list[i] = nil
		}
		errs = append(errs, field.Invalid(fp, field.OmitValueType{}, "cannot read: "+err.Error()))
	}
	return errs
}

// within reports whether the field path f is p or lies under it.
func within(f, p string) bool {
	rest, ok := strings.CutPrefix(f, p)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

func kindOf(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case nil:
		return "empty"
	default:
		return fmt.Sprintf("%v", v)
	}
}

// sortedRuns orders each run of errors on one field by message: apimachinery's validators
// (label selectors) iterate maps and report several errors on the same path in random order.
func sortedRuns(errs field.ErrorList) field.ErrorList {
	for i := 0; i < len(errs); {
		j := i + 1
		for j < len(errs) && errs[j].Field == errs[i].Field {
			j++
		}
		slices.SortStableFunc(errs[i:j], func(a, b *field.Error) int { return strings.Compare(a.Error(), b.Error()) })
		i = j
	}
	return errs
}

// InvalidError lists every problem in a profile file: unknown fields, then values, each with its
// path (profiles[<name>].<field>).
type InvalidError struct{ Errs []error }

func (e *InvalidError) Error() string {
	return ProblemList(fmt.Sprintf("profiles: %d problem(s) to fix:", len(e.Errs)), e.Errs)
}

// ProblemList writes heading, then each problem on its own indented line; a problem that spans
// lines (a nested list such as an InvalidError) is indented one step further, so it reads as
// part of its entry.
func ProblemList(heading string, problems []error) string {
	var b strings.Builder
	b.WriteString(heading)
	for _, p := range problems {
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(p.Error(), "\n", "\n    "))
	}
	return b.String()
}

func validateFile(f *File, reserved []string) field.ErrorList {
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
		errs = append(errs, validateReserved(&p.Pod, reserved, fp.Child("pod"))...)
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
	errs = append(errs, validateResourceName(p.GPUResource, fp.Child("gpuResource"))...)
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
	switch s.RuntimeClassWhen {
	case "", RuntimeClassAlways:
	case RuntimeClassGPU:
		if s.RuntimeClassName == "" {
			errs = append(errs, field.Invalid(fp.Child("runtimeClassWhen"), s.RuntimeClassWhen, "needs runtimeClassName"))
		}
	default:
		errs = append(errs, field.NotSupported(fp.Child("runtimeClassWhen"), s.RuntimeClassWhen, []string{RuntimeClassAlways, RuntimeClassGPU}))
	}
	errs = append(errs, validateLabels(s.NodeSelector, fp.Child("nodeSelector"))...)
	for i := range s.Tolerations {
		errs = append(errs, validateToleration(&s.Tolerations[i], fp.Child("tolerations").Index(i))...)
	}
	errs = append(errs, validateAffinity(&s.Affinity, fp.Child("affinity"))...)
	errs = append(errs, validateUnique(s.Volumes, fp.Child("volumes"), "name", func(v *corev1.Volume) string { return v.Name }, validateVolume, map[string]bool{})...)
	return errs
}

// validateUnique validates each item and reports an item whose key (its keyField) is already in
// seen, or was used by an earlier item, as a duplicate.
func validateUnique[T any](items []T, p *field.Path, keyField string, key func(*T) string, validate func(*T, *field.Path) field.ErrorList, seen map[string]bool) field.ErrorList {
	var errs field.ErrorList
	for i := range items {
		it, ip := &items[i], p.Index(i)
		errs = append(errs, validate(it, ip)...)
		k := key(it)
		if seen[k] {
			errs = append(errs, field.Duplicate(ip.Child(keyField), k))
		}
		seen[k] = true
	}
	return errs
}

func validateContainer(p *Profile, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	s := &p.Container
	for _, name := range slices.Sorted(maps.Keys(s.Limits)) {
		lp := fp.Child("limits").Key(string(name))
		if e := validateResourceName(name, lp); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		errs = append(errs, quantityOK(name, s.Limits[name], lp)...)
	}
	envNames := map[string]bool{}
	errs = append(errs, validateUnique(s.Env, fp.Child("env"), "name", func(e *corev1.EnvVar) string { return e.Name }, validateEnvVar, envNames)...)
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
	errs = append(errs, validateUnique(s.VolumeMounts, fp.Child("volumeMounts"), "mountPath", func(m *corev1.VolumeMount) string { return m.MountPath }, validateVolumeMount, paths)...)
	errs = append(errs, validateUnique(s.ResourceClaims, fp.Child("resourceClaims"), "name", func(c *corev1.PodResourceClaim) string { return c.Name }, validateResourceClaim, map[string]bool{})...)
	if p.Containers.Select == SelectGPU && len(s.ResourceClaims) > 0 {
		// select gpu reaches only containers that request devices already, and those win.
		errs = append(errs, field.Invalid(fp.Child("resourceClaims"), p.Containers.Select+" (containers.select)",
			"select gpu reaches only containers that request devices themselves, which keep their own: the claims would never be added"))
	}
	if q, gpu := s.Limits[p.GPUResource]; gpu && len(s.ResourceClaims) > 0 {
		// Both would ask the node for devices: a limit from the device plugin and a claim.
		errs = append(errs, field.Invalid(fp.Child("limits").Key(string(p.GPUResource)), q.String(),
			"a GPU limit and resourceClaims both request devices: keep one"))
	}
	return errs
}

// validateResourceClaim checks one of the profile's claims: a DNS-label name (the API's rule
// for spec.resourceClaims) from a template. A named ResourceClaim is refused: it would be one
// claim shared by every Pod the profile reaches.
func validateResourceClaim(c *corev1.PodResourceClaim, p *field.Path) field.ErrorList {
	errs := appendMsgs(nil, p.Child("name"), c.Name, validation.IsDNS1123Label(c.Name))
	if c.ResourceClaimName != nil {
		errs = append(errs, field.Forbidden(p.Child("resourceClaimName"), "a profile's claim comes from a template, one per Pod: use resourceClaimTemplateName"))
	}
	switch t := c.ResourceClaimTemplateName; {
	case t == nil || *t == "":
		errs = append(errs, field.Required(p.Child("resourceClaimTemplateName"), "the ResourceClaimTemplate in the Pod's namespace"))
	default:
		errs = appendMsgs(errs, p.Child("resourceClaimTemplateName"), *t, validation.IsDNS1123Subdomain(*t))
	}
	return errs
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

// validateReserved refuses a profile that sets one of the webhook's own keys: the Pod would be
// mutated, then refused or misread when the webhook sees it again.
func validateReserved(s *PodSettings, reserved []string, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, m := range []struct {
		name   string
		values map[string]string
	}{{"labels", s.Labels}, {"annotations", s.Annotations}} {
		for _, k := range slices.Sorted(maps.Keys(m.values)) {
			if slices.Contains(reserved, k) {
				errs = append(errs, field.Forbidden(fp.Child(m.name).Key(k), "reserved for the webhook itself ("+strings.Join(reserved, ", ")+")"))
			}
		}
	}
	return errs
}

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
