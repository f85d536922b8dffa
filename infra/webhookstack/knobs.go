package webhookstack

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// This file holds the deployment knobs of real clusters (README, "Running it in production"):
// their value types, as read from config, and their validation. The Pod they shape is built in
// workload.go, the optional objects in production.go.

// PDB is the PodDisruptionBudget's one limit: exactly one of the two is set.
type PDB struct {
	MinAvailable   *intstr.IntOrString
	MaxUnavailable *intstr.IntOrString
}

// Autoscaling is the optional HorizontalPodAutoscaler (autoscaling/v2). With it, the Deployment
// leaves spec.replicas to the autoscaler.
type Autoscaling struct {
	Enabled     bool
	MinReplicas int
	MaxReplicas int
	// Target utilisations of the container's requests, in percent; 0 leaves the metric out.
	TargetCPU    int
	TargetMemory int
}

// NetworkPolicy is the optional policy that admits only the API server to the webhook port
// and Prometheus to the metrics port.
type NetworkPolicy struct {
	Enabled bool
	// APIServerCIDRs are where the API server's calls come from: the API server is no Pod, so
	// no selector can name it.
	APIServerCIDRs []string
	// PrometheusNamespaces and PrometheusPods select the scrapers (a NetworkPolicy peer).
	PrometheusNamespaces metav1.LabelSelector
	PrometheusPods       metav1.LabelSelector
}

// Int is an integer leaf of an object key: a JSON number or its text (`--path` may store either).
type Int int

// UnmarshalJSON implements json.Unmarshaler.
func (n *Int) UnmarshalJSON(data []byte) error {
	var t Text
	if err := t.UnmarshalJSON(data); err != nil {
		return err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(t)))
	if err != nil {
		return fmt.Errorf("want an integer, got %s", data)
	}
	*n = Int(v)
	return nil
}

// Bool is a boolean leaf of an object key: true or false, as JSON or as text.
type Bool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *Bool) UnmarshalJSON(data []byte) error {
	var t Text
	if err := t.UnmarshalJSON(data); err != nil {
		return err
	}
	v, err := strconv.ParseBool(strings.TrimSpace(string(t)))
	if err != nil {
		return fmt.Errorf("want true or false, got %s", data)
	}
	*b = Bool(v)
	return nil
}

// Unsettable is a leaf that overrides a default and can remove it: "" leaves the field unset
// (OpenShift assigns the user ID itself, so runAsUser must be removable).
type Unsettable[T int64 | bool | string] struct{ Value *T }

// UnmarshalJSON implements json.Unmarshaler.
func (u *Unsettable[T]) UnmarshalJSON(data []byte) error {
	var t Text
	if err := t.UnmarshalJSON(data); err != nil {
		return err
	}
	s := strings.TrimSpace(string(t))
	if s == "" {
		u.Value = nil
		return nil
	}
	var v T
	switch p := any(&v).(type) {
	case *int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf(`want an integer or "" (unset), got %s`, data)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf(`want true, false or "" (unset), got %s`, data)
		}
		*p = b
	case *string:
		*p = s
	}
	u.Value = &v
	return nil
}

func (u *Unsettable[T]) over(d *T) *T {
	if u == nil {
		return d
	}
	return u.Value
}

func seccompOver(u *Unsettable[string], d *corev1.SeccompProfile) *corev1.SeccompProfile {
	if u == nil {
		return d
	}
	if u.Value == nil {
		return nil
	}
	return &corev1.SeccompProfile{Type: corev1.SeccompProfileType(*u.Value)}
}

type stringMapValue map[string]Text

func (v stringMapValue) over(d map[string]string) map[string]string { return overlay(d, v) }

type stringsValue []Text

func (v stringsValue) over([]string) []string { return texts[string](v) }

type tolerationValue struct {
	Key               Text `json:"key"`
	Operator          Text `json:"operator"`
	Value             Text `json:"value"`
	Effect            Text `json:"effect"`
	TolerationSeconds *Int `json:"tolerationSeconds"`
}

type tolerationsValue []tolerationValue

func (list tolerationsValue) over([]corev1.Toleration) []corev1.Toleration {
	out := make([]corev1.Toleration, len(list))
	for i, v := range list {
		out[i] = corev1.Toleration{
			Key: string(v.Key), Operator: corev1.TolerationOperator(v.Operator), Value: string(v.Value),
			Effect: corev1.TaintEffect(v.Effect),
		}
		if v.TolerationSeconds != nil {
			out[i].TolerationSeconds = new(int64(*v.TolerationSeconds))
		}
	}
	return out
}

// affinityValue and spreadValue are the Kubernetes types themselves: nested selectors are too
// deep for leaf-by-leaf value types, and a given value replaces the built-in spread whole.
type affinityValue corev1.Affinity

func (v affinityValue) over(corev1.Affinity) corev1.Affinity { return corev1.Affinity(v) }

type spreadValue []corev1.TopologySpreadConstraint

func (v spreadValue) over([]corev1.TopologySpreadConstraint) []corev1.TopologySpreadConstraint {
	return append([]corev1.TopologySpreadConstraint{}, v...)
}

type envValue []struct {
	Name  Text `json:"name"`
	Value Text `json:"value"`
}

func (list envValue) over([]corev1.EnvVar) []corev1.EnvVar {
	out := make([]corev1.EnvVar, len(list))
	for i, e := range list {
		out[i] = corev1.EnvVar{Name: string(e.Name), Value: string(e.Value)}
	}
	return out
}

type podSecurityValue struct {
	RunAsNonRoot   *Unsettable[bool]   `json:"runAsNonRoot"`
	RunAsUser      *Unsettable[int64]  `json:"runAsUser"`
	RunAsGroup     *Unsettable[int64]  `json:"runAsGroup"`
	FSGroup        *Unsettable[int64]  `json:"fsGroup"`
	SeccompProfile *Unsettable[string] `json:"seccompProfile"`
}

func (v podSecurityValue) over(d corev1.PodSecurityContext) corev1.PodSecurityContext {
	d.RunAsNonRoot = v.RunAsNonRoot.over(d.RunAsNonRoot)
	d.RunAsUser = v.RunAsUser.over(d.RunAsUser)
	d.RunAsGroup = v.RunAsGroup.over(d.RunAsGroup)
	d.FSGroup = v.FSGroup.over(d.FSGroup)
	d.SeccompProfile = seccompOver(v.SeccompProfile, d.SeccompProfile)
	return d
}

type containerSecurityValue struct {
	RunAsNonRoot             *Unsettable[bool]   `json:"runAsNonRoot"`
	RunAsUser                *Unsettable[int64]  `json:"runAsUser"`
	RunAsGroup               *Unsettable[int64]  `json:"runAsGroup"`
	ReadOnlyRootFilesystem   *Unsettable[bool]   `json:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *Unsettable[bool]   `json:"allowPrivilegeEscalation"`
	Privileged               *Unsettable[bool]   `json:"privileged"`
	SeccompProfile           *Unsettable[string] `json:"seccompProfile"`
	Capabilities             *struct {
		Add  []Text `json:"add"`
		Drop []Text `json:"drop"`
	} `json:"capabilities"`
}

func (v containerSecurityValue) over(d corev1.SecurityContext) corev1.SecurityContext {
	d.RunAsNonRoot = v.RunAsNonRoot.over(d.RunAsNonRoot)
	d.RunAsUser = v.RunAsUser.over(d.RunAsUser)
	d.RunAsGroup = v.RunAsGroup.over(d.RunAsGroup)
	d.ReadOnlyRootFilesystem = v.ReadOnlyRootFilesystem.over(d.ReadOnlyRootFilesystem)
	d.AllowPrivilegeEscalation = v.AllowPrivilegeEscalation.over(d.AllowPrivilegeEscalation)
	d.Privileged = v.Privileged.over(d.Privileged)
	d.SeccompProfile = seccompOver(v.SeccompProfile, d.SeccompProfile)
	if c := v.Capabilities; c != nil {
		caps := corev1.Capabilities{}
		if d.Capabilities != nil {
			caps = *d.Capabilities
		}
		if c.Add != nil {
			caps.Add = texts[corev1.Capability](c.Add)
		}
		if c.Drop != nil {
			caps.Drop = texts[corev1.Capability](c.Drop)
		}
		d.Capabilities = &caps
	}
	return d
}

type pdbValue struct {
	MinAvailable   *Text `json:"minAvailable"`
	MaxUnavailable *Text `json:"maxUnavailable"`
}

// over replaces both limits when either is given: they are one choice, and merging
// maxUnavailable's default into a given minAvailable would set both.
func (v pdbValue) over(d PDB) PDB {
	if v.MinAvailable == nil && v.MaxUnavailable == nil {
		return d
	}
	limit := func(t *Text) *intstr.IntOrString {
		if t == nil || *t == "" {
			return nil
		}
		return new(intstr.Parse(string(*t)))
	}
	return PDB{MinAvailable: limit(v.MinAvailable), MaxUnavailable: limit(v.MaxUnavailable)}
}

type autoscalingValue struct {
	Enabled      *Bool `json:"enabled"`
	MinReplicas  *Int  `json:"minReplicas"`
	MaxReplicas  *Int  `json:"maxReplicas"`
	TargetCPU    *Int  `json:"targetCPUUtilizationPercentage"`
	TargetMemory *Int  `json:"targetMemoryUtilizationPercentage"`
}

func (v autoscalingValue) over(d Autoscaling) Autoscaling {
	setInt := func(into *int, from *Int) {
		if from != nil {
			*into = int(*from)
		}
	}
	if v.Enabled != nil {
		d.Enabled = bool(*v.Enabled)
	}
	setInt(&d.MinReplicas, v.MinReplicas)
	setInt(&d.MaxReplicas, v.MaxReplicas)
	setInt(&d.TargetCPU, v.TargetCPU)
	setInt(&d.TargetMemory, v.TargetMemory)
	return d
}

type networkPolicyValue struct {
	Enabled        *Bool  `json:"enabled"`
	APIServerCIDRs []Text `json:"apiServerCIDRs"`
	Prometheus     *struct {
		NamespaceSelector *labelSelectorValue `json:"namespaceSelector"`
		PodSelector       *labelSelectorValue `json:"podSelector"`
	} `json:"prometheus"`
}

func (v networkPolicyValue) over(d NetworkPolicy) NetworkPolicy {
	if v.Enabled != nil {
		d.Enabled = bool(*v.Enabled)
	}
	if v.APIServerCIDRs != nil {
		d.APIServerCIDRs = texts[string](v.APIServerCIDRs)
	}
	if p := v.Prometheus; p != nil {
		if p.NamespaceSelector != nil {
			d.PrometheusNamespaces = p.NamespaceSelector.over(d.PrometheusNamespaces)
		}
		if p.PodSelector != nil {
			d.PrometheusPods = p.PodSelector.over(d.PrometheusPods)
		}
	}
	return d
}

// managedFlags are the server flags the stack sets itself; extraArgs may not repeat them (the
// last would win silently).
var managedFlags = []string{
	"--listen", "--tls-cert-file", "--tls-key-file", "--profiles-file", "--domain", "--shutdown-delay",
	"--log-level", "--cluster-facts", "--metrics-listen",
}

// validateKnobs checks the production knobs; each problem names its key.
func (c *Config) validateKnobs() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, keyError(key, format, args...))
	}
	root := func(key string) *field.Path { return field.NewPath(ConfigNamespace + ":" + key) }

	if msgs := validation.IsDNS1035Label(c.Name); len(msgs) > 0 {
		bad("name", "must be a DNS label starting with a letter, such as ai-webhook-canary, got %q: %s", c.Name, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsValidPortNum(c.Port); len(msgs) > 0 {
		bad("port", "must be a port number, got %d: %s", c.Port, strings.Join(msgs, "; "))
	} else if c.HostNetwork && c.Port == kubeletPort {
		bad("port", "must not be %d with hostNetwork: the kubelet listens there on every node", kubeletPort)
	}

	errs = appendFieldErrs(errs, sortedLabels(c.NodeSelector, root("nodeSelector")))
	errs = appendFieldErrs(errs, validateTolerations(c.Tolerations, root("tolerations")))
	errs = appendFieldErrs(errs, validateAffinity(c.Affinity, root("affinity")))
	errs = appendFieldErrs(errs, validateSpread(c.TopologySpreadConstraints, root("topologySpreadConstraints")))
	for i, s := range c.ImagePullSecrets {
		if msgs := validation.IsDNS1123Subdomain(s); len(msgs) > 0 {
			bad(fmt.Sprintf("imagePullSecrets[%d]", i), "must be a Secret name, got %q: %s", s, strings.Join(msgs, "; "))
		}
	}
	errs = appendFieldErrs(errs, sortedLabels(c.PodLabels, root("podLabels")))
	for _, k := range slices.Sorted(maps.Keys(c.PodLabels)) {
		if _, ours := selectorLabels(c.Name)[k]; ours {
			bad("podLabels", "must not set %s: the stack's selectors use it", k)
		}
	}
	errs = appendFieldErrs(errs, apivalidation.ValidateAnnotations(c.PodAnnotations, root("podAnnotations")))
	errs = append(errs, validateSecurity(c.PodSecurityContext, c.ContainerSecurityContext)...)
	errs = append(errs, c.PDB.validate()...)
	errs = append(errs, c.Autoscaling.validate()...)

	for i, a := range c.ExtraArgs {
		key := fmt.Sprintf("extraArgs[%d]", i)
		name, _, _ := strings.Cut(a, "=")
		switch {
		case !strings.HasPrefix(a, "-"):
			bad(key, "must be a flag such as --max-body-bytes=4194304, got %q", a)
		case slices.Contains(managedFlags, "--"+strings.TrimLeft(name, "-")):
			bad(key, "sets %s, which the stack sets itself (see the keys port, domain, logLevel, clusterFacts)", name)
		}
	}
	seen := map[string]bool{envMemoryLimit: true}
	for i, e := range c.ExtraEnv {
		key := fmt.Sprintf("extraEnv[%d].name", i)
		if msgs := validation.IsEnvVarName(e.Name); len(msgs) > 0 {
			bad(key, "must be an environment variable name, got %q: %s", e.Name, strings.Join(msgs, "; "))
		} else if seen[e.Name] {
			bad(key, "%s is set twice (or by the stack)", e.Name)
		}
		seen[e.Name] = true
	}
	errs = append(errs, c.validateNetworkPolicy()...)
	return errs
}

// kubeletPort is the kubelet's API port (GKE private clusters let the control plane reach it).
const kubeletPort = 10250

// sortedLabels validates label keys and values in key order (see validateSelector).
func sortedLabels(m map[string]string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(m)) {
		errs = append(errs, metav1validation.ValidateLabels(map[string]string{k: m[k]}, path)...)
	}
	return errs
}

func validateTolerations(list []corev1.Toleration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range list {
		at := path.Index(i)
		if t.Key != "" {
			for _, msg := range validation.IsQualifiedName(t.Key) {
				errs = append(errs, field.Invalid(at.Child("key"), t.Key, msg))
			}
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			if t.Key == "" {
				errs = append(errs, field.Invalid(at.Child("operator"), t.Operator, "must be Exists when key is empty (tolerate every taint)"))
			}
			for _, msg := range validation.IsValidLabelValue(t.Value) {
				errs = append(errs, field.Invalid(at.Child("value"), t.Value, msg))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(at.Child("value"), t.Value, "must be empty when operator is Exists"))
			}
		default:
			errs = append(errs, field.NotSupported(at.Child("operator"), t.Operator, []string{string(corev1.TolerationOpEqual), string(corev1.TolerationOpExists)}))
		}
		switch t.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			errs = append(errs, field.NotSupported(at.Child("effect"), t.Effect, []string{"", string(corev1.TaintEffectNoSchedule), string(corev1.TaintEffectPreferNoSchedule), string(corev1.TaintEffectNoExecute)}))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(at.Child("tolerationSeconds"), *t.TolerationSeconds, "is used only with effect NoExecute"))
		}
	}
	return errs
}

// validateAffinity checks node affinity with the scheduler's own parser (component-helpers)
// and the label selectors and topology keys of the Pod (anti-)affinity terms.
func validateAffinity(a corev1.Affinity, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	asFieldErrs := func(err error) {
		if agg, ok := err.(interface{ Errors() []error }); ok {
			for _, e := range agg.Errors() {
				if fe, ok := e.(*field.Error); ok {
					errs = append(errs, fe)
				} else {
					errs = append(errs, field.Invalid(path.Child("nodeAffinity"), "", e.Error()))
				}
			}
		} else if err != nil {
			errs = append(errs, field.Invalid(path.Child("nodeAffinity"), "", err.Error()))
		}
	}
	if na := a.NodeAffinity; na != nil {
		if na.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			_, err := nodeaffinity.NewNodeSelector(na.RequiredDuringSchedulingIgnoredDuringExecution,
				field.WithPath(path.Child("nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")))
			asFieldErrs(err)
		}
		_, err := nodeaffinity.NewPreferredSchedulingTerms(na.PreferredDuringSchedulingIgnoredDuringExecution,
			field.WithPath(path.Child("nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution")))
		asFieldErrs(err)
		for i, t := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			errs = append(errs, validateWeight(t.Weight, path.Child("nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution").Index(i).Child("weight"))...)
		}
	}
	podTerms := func(p *field.Path, required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm) {
		for i, t := range required {
			errs = append(errs, validatePodTerm(t, p.Child("requiredDuringSchedulingIgnoredDuringExecution").Index(i))...)
		}
		for i, t := range preferred {
			at := p.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
			errs = append(errs, validateWeight(t.Weight, at.Child("weight"))...)
			errs = append(errs, validatePodTerm(t.PodAffinityTerm, at.Child("podAffinityTerm"))...)
		}
	}
	if pa := a.PodAffinity; pa != nil {
		podTerms(path.Child("podAffinity"), pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if pa := a.PodAntiAffinity; pa != nil {
		podTerms(path.Child("podAntiAffinity"), pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	return errs
}

func validateWeight(w int32, path *field.Path) field.ErrorList {
	if w < 1 || w > 100 {
		return field.ErrorList{field.Invalid(path, w, "must be between 1 and 100")}
	}
	return nil
}

func validatePodTerm(t corev1.PodAffinityTerm, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateTopologyKey(t.TopologyKey, path.Child("topologyKey"))...)
	if t.LabelSelector != nil {
		errs = append(errs, validateSelector(*t.LabelSelector, path.Child("labelSelector"))...)
	}
	if t.NamespaceSelector != nil {
		errs = append(errs, validateSelector(*t.NamespaceSelector, path.Child("namespaceSelector"))...)
	}
	return errs
}

func validateTopologyKey(key string, path *field.Path) field.ErrorList {
	if key == "" {
		return field.ErrorList{field.Required(path, "a node label such as kubernetes.io/hostname")}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(key) {
		errs = append(errs, field.Invalid(path, key, msg))
	}
	return errs
}

func validateSpread(list []corev1.TopologySpreadConstraint, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range list {
		at := path.Index(i)
		if c.MaxSkew < 1 {
			errs = append(errs, field.Invalid(at.Child("maxSkew"), c.MaxSkew, "must be at least 1"))
		}
		errs = append(errs, validateTopologyKey(c.TopologyKey, at.Child("topologyKey"))...)
		switch c.WhenUnsatisfiable {
		case corev1.DoNotSchedule, corev1.ScheduleAnyway:
		default:
			errs = append(errs, field.NotSupported(at.Child("whenUnsatisfiable"), c.WhenUnsatisfiable, []string{string(corev1.DoNotSchedule), string(corev1.ScheduleAnyway)}))
		}
		if c.LabelSelector != nil {
			errs = append(errs, validateSelector(*c.LabelSelector, at.Child("labelSelector"))...)
		}
	}
	return errs
}

// validateSecurity refuses combinations the kubelet would refuse at container start, so they
// fail at preview instead of as a crash-looping rollout.
func validateSecurity(pod corev1.PodSecurityContext, ctr corev1.SecurityContext) []error {
	var errs []error
	seccomp := func(key string, p *corev1.SeccompProfile) {
		if p != nil && p.Type != corev1.SeccompProfileTypeRuntimeDefault && p.Type != corev1.SeccompProfileTypeUnconfined {
			errs = append(errs, keyError(key, `must be "RuntimeDefault", "Unconfined" or "" (unset), got %q`, p.Type))
		}
	}
	seccomp("podSecurityContext.seccompProfile", pod.SeccompProfile)
	seccomp("containerSecurityContext.seccompProfile", ctr.SeccompProfile)
	for _, id := range []struct {
		key string
		v   *int64
	}{
		{"podSecurityContext.runAsUser", pod.RunAsUser}, {"podSecurityContext.runAsGroup", pod.RunAsGroup},
		{"podSecurityContext.fsGroup", pod.FSGroup},
		{"containerSecurityContext.runAsUser", ctr.RunAsUser}, {"containerSecurityContext.runAsGroup", ctr.RunAsGroup},
	} {
		if id.v != nil && *id.v < 0 {
			errs = append(errs, keyError(id.key, "must not be negative, got %d", *id.v))
		}
	}
	// The container's value wins over the Pod's.
	nonRoot, user := pod.RunAsNonRoot, pod.RunAsUser
	if ctr.RunAsNonRoot != nil {
		nonRoot = ctr.RunAsNonRoot
	}
	if ctr.RunAsUser != nil {
		user = ctr.RunAsUser
	}
	if nonRoot != nil && *nonRoot && user != nil && *user == 0 {
		errs = append(errs, keyError("containerSecurityContext", "runs as user 0 with runAsNonRoot true: the kubelet refuses to start it"))
	}
	if p, e := ctr.Privileged, ctr.AllowPrivilegeEscalation; p != nil && *p && e != nil && !*e {
		errs = append(errs, keyError("containerSecurityContext", "privileged true needs allowPrivilegeEscalation true or unset (the API server refuses the pair)"))
	}
	if c := ctr.Capabilities; c != nil {
		for i, list := range [][]corev1.Capability{c.Add, c.Drop} {
			for j, name := range list {
				if name == "" || strings.ContainsAny(string(name), " \t") {
					errs = append(errs, keyError(fmt.Sprintf("containerSecurityContext.capabilities.%s[%d]", []string{"add", "drop"}[i], j), "must be a capability name such as NET_BIND_SERVICE, got %q", name))
				}
			}
		}
	}
	return errs
}

func (p PDB) validate() []error {
	var errs []error
	if (p.MinAvailable == nil) == (p.MaxUnavailable == nil) {
		errs = append(errs, keyError("podDisruptionBudget", "must set exactly one of minAvailable and maxUnavailable"))
	}
	for _, l := range []struct {
		key string
		v   *intstr.IntOrString
	}{{"podDisruptionBudget.minAvailable", p.MinAvailable}, {"podDisruptionBudget.maxUnavailable", p.MaxUnavailable}} {
		switch {
		case l.v == nil:
		case l.v.Type == intstr.Int && l.v.IntVal < 0:
			errs = append(errs, keyError(l.key, "must not be negative, got %d", l.v.IntVal))
		case l.v.Type == intstr.String:
			if msgs := validation.IsValidPercent(l.v.StrVal); len(msgs) > 0 {
				errs = append(errs, keyError(l.key, "must be a number of Pods or a percentage such as 50%%, got %q", l.v.StrVal))
			} else if n, _ := strconv.Atoi(strings.TrimSuffix(l.v.StrVal, "%")); n > 100 {
				errs = append(errs, keyError(l.key, "must not exceed 100%%, got %q", l.v.StrVal))
			}
		}
	}
	return errs
}

func (a Autoscaling) validate() []error {
	var errs []error
	if !a.Enabled {
		return nil
	}
	if a.MinReplicas < 1 {
		errs = append(errs, keyError("autoscaling.minReplicas", "must be at least 1, got %d", a.MinReplicas))
	}
	if a.MaxReplicas < a.MinReplicas {
		errs = append(errs, keyError("autoscaling.maxReplicas", "must be at least minReplicas (%d), got %d", a.MinReplicas, a.MaxReplicas))
	}
	for _, t := range []struct {
		key string
		v   int
	}{{"autoscaling.targetCPUUtilizationPercentage", a.TargetCPU}, {"autoscaling.targetMemoryUtilizationPercentage", a.TargetMemory}} {
		if t.v < 0 {
			errs = append(errs, keyError(t.key, "must be a percentage above 0 (or 0 to leave it out), got %d", t.v))
		}
	}
	if a.TargetCPU == 0 && a.TargetMemory == 0 {
		errs = append(errs, keyError("autoscaling", "needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage"))
	}
	return errs
}

func (c *Config) validateNetworkPolicy() []error {
	n := c.NetworkPolicy
	var errs []error
	for i, cidr := range n.APIServerCIDRs {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			errs = append(errs, keyError(fmt.Sprintf("networkPolicy.apiServerCIDRs[%d]", i), "must be a CIDR such as 10.0.0.0/28 or 172.16.0.2/32, got %q", cidr))
		}
	}
	root := field.NewPath(ConfigNamespace+":networkPolicy", "prometheus")
	errs = appendFieldErrs(errs, validateSelector(n.PrometheusNamespaces, root.Child("namespaceSelector")))
	errs = appendFieldErrs(errs, validateSelector(n.PrometheusPods, root.Child("podSelector")))
	if !n.Enabled {
		return errs
	}
	if len(n.APIServerCIDRs) == 0 {
		errs = append(errs, keyError("networkPolicy.apiServerCIDRs", "must list the addresses the API server calls from when networkPolicy.enabled is true (the API server is no Pod, so no selector names it)"))
	}
	if c.HostNetwork {
		errs = append(errs, keyError("networkPolicy.enabled", "has no effect with hostNetwork: a NetworkPolicy does not apply to host-network Pods; use the nodes' firewall"))
	}
	return errs
}
