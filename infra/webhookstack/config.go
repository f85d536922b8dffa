package webhookstack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// ConfigNamespace is the Pulumi config namespace of every key this program reads
// ("ai-webhook:image", ...). It is also the project name in Pulumi.yaml.
const ConfigNamespace = "ai-webhook"

// Namespace selector modes (config key namespaceSelector.mode).
const (
	// ModeOptIn calls the webhook only for namespaces labelled <domain>/inject=enabled (or
	// another of profile.OptInValues).
	ModeOptIn = "optIn"
	// ModeOptOut calls the webhook for every namespace not labelled <domain>/inject=disabled (or
	// another of profile.OptOutValues).
	ModeOptOut = "optOut"
	// ModeAll calls the webhook for every namespace.
	ModeAll = "all"
	// ModeCustom uses the matchLabels and matchExpressions given in config.
	ModeCustom = "custom"
)

// Config is the whole stack configuration: one field per "ai-webhook:<key>" config key (the
// key is named beside each field). Strings, integers and booleans are plain config values; the
// other keys are JSON objects or arrays (set them with `pulumi config set --path`). Keys that are
// not set keep the value from defaultConfig: objects are merged key by key with the default,
// arrays replace the default array whole. Pulumi.yaml declares the same keys and defaults (a test
// keeps the two equal).
type Config struct {
	// Image (image) is the ai-webhook container image. Required: there is no registry to default to.
	Image           string            // image
	ImagePullPolicy corev1.PullPolicy // imagePullPolicy
	// Namespace the webhook runs in; created unless CreateNamespace is false.
	Namespace         string    // namespace
	CreateNamespace   bool      // createNamespace
	Replicas          int       // replicas
	PriorityClassName string    // priorityClassName
	Resources         Resources // resources
	LogLevel          string    // logLevel
	// Domain (domain) prefixes the label and annotation keys the webhook reads and writes
	// (profile.KeysFor: <domain>/profile, <domain>/inject, <domain>/injected).
	Domain string
	// Profiles (profiles) is a profile file (YAML). Empty means the shipped examples (profile.Examples).
	Profiles string
	// Backend (backend) applies the profiles: webhook, policy or auto (backend.go).
	Backend string
	// ClusterFacts (clusterFacts) runs the server with --cluster-facts on: it watches
	// RuntimeClasses and PriorityClasses through a read-only ClusterRole (rbac.go) and leaves out
	// a class the cluster lacks.
	ClusterFacts bool
	// ResourceClaimTemplates (resourceClaimTemplates): the DRA profiles' templates the stack
	// creates, and where (claims.go).
	ResourceClaimTemplates ClaimTemplates
	// PodsOutOfDateMetric (podsOutOfDateMetric) runs the server with --pods-out-of-date-metric
	// on: it watches every Pod's metadata (rbac.go) for ai_webhook_pods_out_of_date.
	PodsOutOfDateMetric bool

	WebhookConfigName string                                       // webhookConfigName
	WebhookName       string                                       // webhookName
	FailurePolicy     admissionregistrationv1.FailurePolicyType    // failurePolicy
	TimeoutSeconds    int                                          // timeoutSeconds
	NamespaceSelector NamespaceSelector                            // namespaceSelector
	ObjectSelector    metav1.LabelSelector                         // objectSelector
	Rules             []admissionregistrationv1.RuleWithOperations // rules

	// CAValidityHours (caValidityHours) is the lifetime of the self-signed CA behind caBundle.
	CAValidityHours int
	// CertValidityHours (certValidityHours) is the lifetime of the serving certificate.
	CertValidityHours int
	// EarlyRenewalHours (earlyRenewalHours): a `pulumi up` this many hours (or fewer) before the
	// serving certificate expires issues a new one. Nothing renews in the background.
	EarlyRenewalHours int
	// Certificates (certificates) chooses who issues the serving certificate (certs.go).
	Certificates Certificates

	// The knobs of real clusters (knobs.go; README, "Running it in production").

	// Name (name) is the instance: it names the Deployment, Service, ServiceAccount and
	// PodDisruptionBudget, is the app.kubernetes.io/instance label the selectors use, and names
	// the MutatingWebhookConfiguration unless webhookConfigName is set.
	Name        string
	Port        int  // port: the container's webhook port (the Service's stays 443)
	HostNetwork bool // hostNetwork (dnsPolicy ClusterFirstWithHostNet)

	NodeSelector map[string]string   // nodeSelector
	Tolerations  []corev1.Toleration // tolerations
	// Affinity (affinity) and TopologySpreadConstraints (topologySpreadConstraints) spread the
	// replicas over nodes by default; a Pod (anti-)affinity term or spread constraint without a
	// labelSelector gets the instance's (podSpread).
	Affinity                  corev1.Affinity
	TopologySpreadConstraints []corev1.TopologySpreadConstraint
	ImagePullSecrets          []string          // imagePullSecrets (Secret names)
	PodLabels                 map[string]string // podLabels
	PodAnnotations            map[string]string // podAnnotations
	// PodSecurityContext (podSecurityContext) and ContainerSecurityContext
	// (containerSecurityContext) are the hardened defaults with the fields given in config.
	PodSecurityContext       corev1.PodSecurityContext
	ContainerSecurityContext corev1.SecurityContext
	PDB                      PDB             // podDisruptionBudget
	Autoscaling              Autoscaling     // autoscaling
	ExtraArgs                []string        // extraArgs: more server flags
	ExtraEnv                 []corev1.EnvVar // extraEnv
	NetworkPolicy            NetworkPolicy   // networkPolicy

	// MetricsPort (metricsPort) is the server's plain-HTTP /metrics port (--metrics-listen); 0:
	// none. Monitoring (monitoring) adds a PodMonitor and a PrometheusRule (monitoring.go).
	MetricsPort int
	Monitoring  Monitoring
}

// NamespaceSelector chooses the namespaces whose Pods are sent to the webhook. Whatever the mode,
// kube-system, kube-public, kube-node-lease and the webhook's own namespace are excluded.
type NamespaceSelector struct {
	Mode string
	// MatchLabels and MatchExpressions are used in mode "custom" only.
	MatchLabels      map[string]string
	MatchExpressions []metav1.LabelSelectorRequirement
}

// Resources are the container's requests and limits. A key set to "" is left out, e.g.
// `pulumi config set --path resources.limits.cpu ""` removes the CPU limit.
type Resources struct {
	Requests map[corev1.ResourceName]string
	Limits   map[corev1.ResourceName]string
}

// defaultConfig is the one place defaults are written down (Pulumi.yaml repeats them for the
// CLI; a test compares the two).
func defaultConfig() Config {
	return Config{
		ImagePullPolicy: corev1.PullIfNotPresent,
		Namespace:       "ai-webhook",
		CreateNamespace: true,
		Replicas:        2,
		Resources: Resources{
			Requests: map[corev1.ResourceName]string{corev1.ResourceCPU: "50m", corev1.ResourceMemory: "64Mi"},
			Limits:   map[corev1.ResourceName]string{corev1.ResourceCPU: "1", corev1.ResourceMemory: "256Mi"},
		},
		LogLevel:          "info",
		Domain:            profile.DefaultDomain,
		Backend:           BackendWebhook,
		WebhookConfigName: "", // derived from name (derive)
		WebhookName:       "", // the domain (derive)
		FailurePolicy:     admissionregistrationv1.Ignore,
		TimeoutSeconds:    10,
		NamespaceSelector: NamespaceSelector{Mode: ModeOptIn},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{corev1.GroupName},
				APIVersions: []string{"v1"},
				Resources:   []string{"pods"},
				Scope:       new(admissionregistrationv1.NamespacedScope),
			},
		}},
		CAValidityHours:   87600, // 10 years
		CertValidityHours: 8760,  // 1 year
		EarlyRenewalHours: 5880,  // renew on any `pulumi up` once the certificate is 4 months old (certs.go)
		Certificates:      Certificates{Mode: CertModePulumi},

		Name:         defaultName,
		Port:         8443,
		NodeSelector: map[string]string{},
		Tolerations:  []corev1.Toleration{},
		// Preferred, not required: a one-node dev cluster still runs every replica.
		Affinity: corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: corev1.LabelHostname},
			}},
		}},
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
		}},
		ImagePullSecrets: []string{},
		PodLabels:        map[string]string{},
		PodAnnotations:   map[string]string{},
		ExtraArgs:        []string{},
		ExtraEnv:         []corev1.EnvVar{},
		PodSecurityContext: corev1.PodSecurityContext{
			RunAsNonRoot:   new(true),
			RunAsUser:      new(int64(nonRootID)),
			RunAsGroup:     new(int64(nonRootID)),
			FSGroup:        new(int64(nonRootID)), // group owner of the mounted key (mode 0440)
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		ContainerSecurityContext: corev1.SecurityContext{
			RunAsNonRoot:             new(true),
			RunAsUser:                new(int64(nonRootID)),
			RunAsGroup:               new(int64(nonRootID)),
			ReadOnlyRootFilesystem:   new(true),
			AllowPrivilegeEscalation: new(false),
			Privileged:               new(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		// maxUnavailable (not minAvailable) so a drain is never blocked, even with one replica.
		PDB:         PDB{MaxUnavailable: new(intstr.FromInt32(1))},
		Autoscaling: Autoscaling{MinReplicas: 2, MaxReplicas: 5, TargetCPU: 80},
		NetworkPolicy: NetworkPolicy{
			APIServerCIDRs: []string{},
			// prometheus-operator's Prometheus Pods carry this label, in whatever namespace.
			PrometheusPods: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
		},
		MetricsPort: 9090,
		Monitoring:  Monitoring{Labels: map[string]string{}},

		ResourceClaimTemplates: ClaimTemplates{
			Namespaces: []string{}, DeviceClassName: "gpu.nvidia.com", Count: 1, Templates: map[string]ClaimTemplate{},
		},
	}
}

// LoadConfig reads every "ai-webhook:" key over the defaults, then validates the result. The
// error lists every problem, each naming its key and what is allowed.
func LoadConfig(ctx *pulumi.Context) (Config, error) {
	cfg := defaultConfig()
	r := &configReader{c: config.New(ctx, ConfigNamespace)}
	r.readInto(&cfg)
	if len(r.errs) > 0 {
		return Config{}, &ConfigError{Problems: r.errs}
	}
	cfg.derive()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// defaultName is the default instance name; legacyWebhookConfigName is the name the
// MutatingWebhookConfiguration of that instance has always had.
const (
	defaultName             = "ai-webhook"
	legacyWebhookConfigName = "ai-mutating-webhook"
)

// derive fills the keys whose default follows other keys: the configuration's name follows the
// instance (it is cluster-scoped, so two instances must not share it; the default instance keeps
// its old name so an existing stack is not replaced), the webhook's name the domain (the API
// server's admission metrics carry it as their name label).
func (c *Config) derive() {
	if c.WebhookConfigName == "" {
		c.WebhookConfigName = c.Name
		if c.Name == defaultName {
			c.WebhookConfigName = legacyWebhookConfigName
		}
	}
	if c.WebhookName == "" {
		c.WebhookName = c.derivedWebhookName()
	}
}

// derivedWebhookName is the domain, or <name>.<domain> when the domain has fewer than the three
// segments the API server wants.
func (c *Config) derivedWebhookName() string {
	if strings.Count(c.Domain, ".") < 2 {
		return c.Name + "." + c.Domain
	}
	return c.Domain
}

// configReader reads keys with the Pulumi SDK's typed config functions, collecting a problem per
// key that is set but unreadable. keyTypes records each key read with its Pulumi.yaml type, so a
// test can hold the declarations in Pulumi.yaml to this list.
type configReader struct {
	c        *config.Config
	errs     []error
	keyTypes map[string]string
}

// readInto sets each field of cfg whose key is set; absent keys leave cfg as it is.
func (r *configReader) readInto(cfg *Config) {
	readString(r, "image", &cfg.Image)
	readString(r, "imagePullPolicy", &cfg.ImagePullPolicy)
	readString(r, "namespace", &cfg.Namespace)
	r.boolean("createNamespace", &cfg.CreateNamespace)
	r.integer("replicas", &cfg.Replicas)
	readString(r, "priorityClassName", &cfg.PriorityClassName)
	readOver[resourcesValue](r, "resources", "object", &cfg.Resources)
	readString(r, "logLevel", &cfg.LogLevel)
	readString(r, "domain", &cfg.Domain)
	readString(r, "profiles", &cfg.Profiles)
	readString(r, "backend", &cfg.Backend)
	r.boolean("clusterFacts", &cfg.ClusterFacts)
	readOver[claimTemplatesValue](r, "resourceClaimTemplates", "object", &cfg.ResourceClaimTemplates)
	r.boolean("podsOutOfDateMetric", &cfg.PodsOutOfDateMetric)

	readString(r, "webhookConfigName", &cfg.WebhookConfigName)
	readString(r, "webhookName", &cfg.WebhookName)
	readString(r, "failurePolicy", &cfg.FailurePolicy)
	r.integer("timeoutSeconds", &cfg.TimeoutSeconds)
	readOver[namespaceSelectorValue](r, "namespaceSelector", "object", &cfg.NamespaceSelector)
	readOver[labelSelectorValue](r, "objectSelector", "object", &cfg.ObjectSelector)
	readOver[rulesValue](r, "rules", "array", &cfg.Rules)

	r.integer("caValidityHours", &cfg.CAValidityHours)
	r.integer("certValidityHours", &cfg.CertValidityHours)
	r.integer("earlyRenewalHours", &cfg.EarlyRenewalHours)
	readOver[certificatesValue](r, "certificates", "object", &cfg.Certificates)

	readString(r, "name", &cfg.Name)
	r.integer("port", &cfg.Port)
	r.boolean("hostNetwork", &cfg.HostNetwork)
	readOver[stringMapValue](r, "nodeSelector", "object", &cfg.NodeSelector)
	readOver[tolerationsValue](r, "tolerations", "array", &cfg.Tolerations)
	readOver[affinityValue](r, "affinity", "object", &cfg.Affinity)
	readOver[spreadValue](r, "topologySpreadConstraints", "array", &cfg.TopologySpreadConstraints)
	readOver[stringsValue](r, "imagePullSecrets", "array", &cfg.ImagePullSecrets)
	readOver[stringMapValue](r, "podLabels", "object", &cfg.PodLabels)
	readOver[stringMapValue](r, "podAnnotations", "object", &cfg.PodAnnotations)
	readOver[podSecurityValue](r, "podSecurityContext", "object", &cfg.PodSecurityContext)
	readOver[containerSecurityValue](r, "containerSecurityContext", "object", &cfg.ContainerSecurityContext)
	readOver[pdbValue](r, "podDisruptionBudget", "object", &cfg.PDB)
	readOver[autoscalingValue](r, "autoscaling", "object", &cfg.Autoscaling)
	readOver[stringsValue](r, "extraArgs", "array", &cfg.ExtraArgs)
	readOver[envValue](r, "extraEnv", "array", &cfg.ExtraEnv)
	readOver[networkPolicyValue](r, "networkPolicy", "object", &cfg.NetworkPolicy)
	r.integer("metricsPort", &cfg.MetricsPort)
	readOver[monitoringValue](r, "monitoring", "object", &cfg.Monitoring)
}

// set records key and reports whether err says it holds a value.
func (r *configReader) set(key, typ string, err error) bool {
	if r.keyTypes == nil {
		r.keyTypes = map[string]string{}
	}
	r.keyTypes[key] = typ
	return !errors.Is(err, config.ErrMissingVar)
}

func (r *configReader) bad(key, format string, args ...any) {
	r.errs = append(r.errs, keyError(key, format, args...))
}

// keyError is a problem with one config key, named as `pulumi config` shows it (ai-webhook:KEY).
func keyError(key, format string, args ...any) error {
	return fmt.Errorf("%s:%s %s", ConfigNamespace, key, fmt.Sprintf(format, args...))
}

func readString[T ~string](r *configReader, key string, into *T) {
	v, err := r.c.Try(key)
	if r.set(key, "string", err) {
		*into = T(v)
	}
}

// integer reads a decimal integer. Not TryInt: it reads 010 as octal 8.
func (r *configReader) integer(key string, into *int) {
	readScalar(r, key, "integer", func(key string) (int, error) {
		v, err := r.c.Try(key)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(v))
	}, into, "an integer")
}

func (r *configReader) boolean(key string, into *bool) {
	readScalar(r, key, "boolean", r.c.TryBool, into, "true or false")
}

// readScalar reads a key with a typed reader such as the SDK's TryBool.
func readScalar[T any](r *configReader, key, typ string, try func(string) (T, error), into *T, want string) {
	v, err := try(key)
	switch {
	case !r.set(key, typ, err):
	case err != nil:
		r.bad(key, "must be %s, got %q", want, r.c.Get(key))
	default:
		*into = v
	}
}

// readJSON decodes an object or array key into a value type of this file, refusing unknown
// fields (they are typos) and reports whether the key was set and read.
func readJSON[T any](r *configReader, key, typ string, into *T) bool {
	var v strict[T]
	err := r.c.TryObject(key, &v)
	if !r.set(key, typ, err) {
		return false
	}
	if err != nil {
		if _, syntax := errors.AsType[*json.SyntaxError](err); syntax {
			r.bad(key, "must be a JSON %s: %v", typ, err)
		} else {
			r.bad(key, "must be a JSON %s matching the documented shape: %v", typ, err)
		}
		return false
	}
	*into = v.value
	return true
}

// readOver reads an object or array key as its value type V and puts it over the default in
// *into (V's over method); an unset or unreadable key leaves *into as it is.
func readOver[V interface{ over(D) D }, D any](r *configReader, key, typ string, into *D) {
	var v V
	if readJSON(r, key, typ, &v) {
		*into = v.over(*into)
	}
}

// strict decodes its JSON refusing unknown fields (config.TryObject uses json.Unmarshal, which
// ignores them).
type strict[T any] struct{ value T }

func (s *strict[T]) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(&s.value)
}

// Text is a config leaf read as text. `pulumi config set --path` stores true/false and integers
// as JSON booleans and numbers, but every leaf of our objects is a string (a label value, a
// quantity such as cpu: 1), so Text takes a JSON string, number or boolean as its text.
type Text string

// UnmarshalJSON implements json.Unmarshaler.
func (t *Text) UnmarshalJSON(data []byte) error {
	switch {
	case data[0] == '"':
		return json.Unmarshal(data, (*string)(t))
	case data[0] == '{' || data[0] == '[':
		return fmt.Errorf("want a string, number or boolean, got %s", data)
	case string(data) != "null": // a number or a boolean: its JSON text
		*t = Text(data)
	}
	return nil
}

func texts[T ~string](list []Text) []T {
	if list == nil {
		return nil
	}
	out := make([]T, len(list))
	for i, s := range list {
		out[i] = T(s)
	}
	return out
}

// overlay returns base with the entries of given added or replaced, base left untouched.
func overlay[K ~string](base map[K]string, given map[string]Text) map[K]string {
	if given == nil {
		return base
	}
	out := make(map[K]string, len(base)+len(given))
	maps.Copy(out, base)
	for k, v := range given {
		out[K(k)] = string(v)
	}
	return out
}

// The types below are the JSON shapes of the object and array keys, leaves as Text. Their over
// methods put what the value gives over the default: objects merge key by key, arrays replace.

type resourcesValue struct {
	Requests map[string]Text `json:"requests"`
	Limits   map[string]Text `json:"limits"`
}

func (v resourcesValue) over(d Resources) Resources {
	return Resources{Requests: overlay(d.Requests, v.Requests), Limits: overlay(d.Limits, v.Limits)}
}

type labelSelectorValue struct {
	MatchLabels      map[string]Text    `json:"matchLabels"`
	MatchExpressions []requirementValue `json:"matchExpressions"`
}

type requirementValue struct {
	Key      Text   `json:"key"`
	Operator Text   `json:"operator"`
	Values   []Text `json:"values"`
}

func (v labelSelectorValue) over(d metav1.LabelSelector) metav1.LabelSelector {
	d.MatchLabels = overlay(d.MatchLabels, v.MatchLabels)
	if v.MatchExpressions != nil {
		d.MatchExpressions = make([]metav1.LabelSelectorRequirement, len(v.MatchExpressions))
		for i, e := range v.MatchExpressions {
			d.MatchExpressions[i] = metav1.LabelSelectorRequirement{
				Key: string(e.Key), Operator: metav1.LabelSelectorOperator(e.Operator), Values: texts[string](e.Values),
			}
		}
	}
	return d
}

type namespaceSelectorValue struct {
	Mode *Text `json:"mode"`
	labelSelectorValue
}

func (v namespaceSelectorValue) over(d NamespaceSelector) NamespaceSelector {
	if v.Mode != nil {
		d.Mode = string(*v.Mode)
	}
	sel := v.labelSelectorValue.over(metav1.LabelSelector{MatchLabels: d.MatchLabels, MatchExpressions: d.MatchExpressions})
	d.MatchLabels, d.MatchExpressions = sel.MatchLabels, sel.MatchExpressions
	return d
}

type ruleValue struct {
	Operations  []Text `json:"operations"`
	APIGroups   []Text `json:"apiGroups"`
	APIVersions []Text `json:"apiVersions"`
	Resources   []Text `json:"resources"`
	Scope       *Text  `json:"scope"`
}

type rulesValue []ruleValue

// over replaces the default rules whole.
func (list rulesValue) over([]admissionregistrationv1.RuleWithOperations) []admissionregistrationv1.RuleWithOperations {
	out := make([]admissionregistrationv1.RuleWithOperations, len(list))
	for i, v := range list {
		out[i] = admissionregistrationv1.RuleWithOperations{
			Operations: texts[admissionregistrationv1.OperationType](v.Operations),
			Rule: admissionregistrationv1.Rule{
				APIGroups: texts[string](v.APIGroups), APIVersions: texts[string](v.APIVersions), Resources: texts[string](v.Resources),
			},
		}
		if v.Scope != nil {
			out[i].Scope = new(admissionregistrationv1.ScopeType(*v.Scope))
		}
	}
	return out
}

// Validate checks every key and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, keyError(key, format, args...))
	}
	root := func(key string) *field.Path { return field.NewPath(ConfigNamespace + ":" + key) }

	if c.Image == "" && c.Backend != BackendPolicy { // policy: no server to run
		bad("image", `is required: set it with "pulumi config set image REGISTRY/ai-webhook:TAG"`)
	} else if strings.ContainsAny(c.Image, " \t\n") {
		bad("image", "must not contain whitespace, got %q", c.Image)
	}
	switch c.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		bad("imagePullPolicy", `must be "Always", "IfNotPresent" or "Never", got %q`, c.ImagePullPolicy)
	}
	if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		bad("namespace", "must be a valid namespace name, got %q: %s", c.Namespace, strings.Join(msgs, "; "))
	}
	if c.Replicas < 1 {
		bad("replicas", "must be at least 1, got %d", c.Replicas)
	}
	if c.PriorityClassName != "" {
		if msgs := validation.IsDNS1123Subdomain(c.PriorityClassName); len(msgs) > 0 {
			bad("priorityClassName", "must be empty or a PriorityClass name, got %q: %s", c.PriorityClassName, strings.Join(msgs, "; "))
		}
	}
	errs = append(errs, c.Resources.validate()...)
	errs = append(errs, c.validateMonitoring()...)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("logLevel", `must be "debug", "info", "warn" or "error", got %q`, c.LogLevel)
	}
	if msgs := validation.IsDNS1123Subdomain(c.Domain); len(msgs) > 0 {
		bad("domain", "must be a DNS subdomain such as ai.example.com, got %q: %s", c.Domain, strings.Join(msgs, "; "))
	}
	if _, err := profile.Parse(c.profilesYAML(), c.Domain); err != nil {
		bad("profiles", "is not a valid profile file: %v", err)
	}
	errs = append(errs, c.validateClaimTemplates()...)
	errs = append(errs, c.validateBackend()...)

	if msgs := validation.IsDNS1123Subdomain(c.WebhookConfigName); len(msgs) > 0 {
		bad("webhookConfigName", "must be a valid object name, got %q: %s", c.WebhookConfigName, strings.Join(msgs, "; "))
	}
	// The API server wants a fully qualified webhook name of at least three segments.
	// A name derived from a domain refused above is not reported twice.
	domainOK := len(validation.IsDNS1123Subdomain(c.Domain)) == 0
	if msgs := validation.IsDNS1123Subdomain(c.WebhookName); (len(msgs) > 0 || strings.Count(c.WebhookName, ".") < 2) &&
		(domainOK || c.WebhookName != c.derivedWebhookName()) {
		bad("webhookName", "must be a fully qualified name of at least three segments such as ai.example.com, got %q", c.WebhookName)
	}
	switch c.FailurePolicy {
	case admissionregistrationv1.Ignore, admissionregistrationv1.Fail:
	default:
		bad("failurePolicy", `must be "Ignore" or "Fail", got %q`, c.FailurePolicy)
	}
	if c.TimeoutSeconds < 1 || c.TimeoutSeconds > 30 {
		bad("timeoutSeconds", "must be between 1 and 30, got %d", c.TimeoutSeconds)
	}

	ns := c.NamespaceSelector
	hasCustom := len(ns.MatchLabels) > 0 || len(ns.MatchExpressions) > 0
	switch ns.Mode {
	case ModeOptIn, ModeOptOut, ModeAll:
		if hasCustom {
			bad("namespaceSelector", "matchLabels and matchExpressions are used only with mode %q, got mode %q", ModeCustom, ns.Mode)
		}
	case ModeCustom:
		if !hasCustom {
			bad("namespaceSelector", "mode %q needs matchLabels or matchExpressions", ModeCustom)
		}
		sel := metav1.LabelSelector{MatchLabels: ns.MatchLabels, MatchExpressions: ns.MatchExpressions}
		errs = appendFieldErrs(errs, validateSelector(sel, root("namespaceSelector")))
	default:
		bad("namespaceSelector.mode", `must be "optIn", "optOut", "all" or "custom", got %q`, ns.Mode)
	}
	errs = appendFieldErrs(errs, validateSelector(c.ObjectSelector, root("objectSelector")))
	errs = append(errs, validateRules(c.Rules)...)

	if c.CAValidityHours < 1 {
		bad("caValidityHours", "must be at least 1, got %d", c.CAValidityHours)
	}
	if c.CertValidityHours < 1 || c.CertValidityHours > c.CAValidityHours {
		bad("certValidityHours", "must be between 1 and caValidityHours (%d), got %d", c.CAValidityHours, c.CertValidityHours)
	}
	if c.EarlyRenewalHours < 0 || c.EarlyRenewalHours >= c.CertValidityHours {
		bad("earlyRenewalHours", "must be at least 0 and less than certValidityHours (%d), got %d", c.CertValidityHours, c.EarlyRenewalHours)
	}
	errs = append(errs, c.Certificates.validate()...)
	errs = append(errs, c.validateKnobs()...)
	if len(errs) > 0 {
		return &ConfigError{Problems: errs}
	}
	return nil
}

// ConfigError lists every problem found in the stack configuration, one per line.
type ConfigError struct{ Problems []error }

func (e *ConfigError) Error() string {
	return profile.ProblemList(fmt.Sprintf("invalid stack configuration (%d problem(s)); fix with `pulumi config set [--path] KEY VALUE`:", len(e.Problems)), e.Problems)
}

// Unwrap returns the individual problems.
func (e *ConfigError) Unwrap() []error { return e.Problems }

func (r Resources) validate() []error {
	var errs []error
	parse := func(section string, list map[corev1.ResourceName]string) map[corev1.ResourceName]resource.Quantity {
		out := map[corev1.ResourceName]resource.Quantity{}
		for _, name := range slices.Sorted(maps.Keys(list)) {
			value := list[name]
			if value == "" {
				continue
			}
			q, err := resource.ParseQuantity(value)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:resources.%s.%s must be a quantity such as 100m or 128Mi, got %q", ConfigNamespace, section, name, value))
				continue
			}
			out[name] = q
		}
		return out
	}
	requests, limits := parse("requests", r.Requests), parse("limits", r.Limits)
	for _, name := range slices.Sorted(maps.Keys(requests)) {
		req := requests[name]
		if limit, ok := limits[name]; ok && req.Cmp(limit) > 0 {
			errs = append(errs, fmt.Errorf("%s:resources.requests.%s (%s) must not exceed resources.limits.%s (%s)", ConfigNamespace, name, req.String(), name, limit.String()))
		}
	}
	return errs
}

func validateRules(rules []admissionregistrationv1.RuleWithOperations) []error {
	key := ConfigNamespace + ":rules"
	if len(rules) == 0 {
		return []error{fmt.Errorf("%s must list at least one rule (the default is CREATE on pods)", key)}
	}
	var errs []error
	for i, r := range rules {
		at := fmt.Sprintf("%s[%d]", key, i)
		if len(r.Operations) == 0 {
			errs = append(errs, fmt.Errorf("%s.operations must not be empty", at))
		}
		for _, op := range r.Operations {
			switch op {
			case admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete,
				admissionregistrationv1.Connect, admissionregistrationv1.OperationAll:
			default:
				errs = append(errs, fmt.Errorf(`%s.operations must hold "CREATE", "UPDATE", "DELETE", "CONNECT" or "*", got %q`, at, op))
			}
		}
		for _, l := range []struct {
			name string
			list []string
		}{{"apiGroups", r.APIGroups}, {"apiVersions", r.APIVersions}, {"resources", r.Resources}} {
			if len(l.list) == 0 {
				errs = append(errs, fmt.Errorf(`%s.%s must not be empty (the core API group is "")`, at, l.name))
			}
		}
		if r.Scope != nil {
			switch *r.Scope {
			case admissionregistrationv1.AllScopes, admissionregistrationv1.ClusterScope, admissionregistrationv1.NamespacedScope:
			default:
				errs = append(errs, fmt.Errorf(`%s.scope must be "*", "Cluster" or "Namespaced", got %q`, at, *r.Scope))
			}
		}
	}
	return errs
}

// validateSelector is metav1validation.ValidateLabelSelector with the labels checked in key
// order: that function ranges over the map, so its errors would come in a new order every run.
func validateSelector(sel metav1.LabelSelector, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(sel.MatchLabels)) {
		errs = append(errs, metav1validation.ValidateLabels(map[string]string{k: sel.MatchLabels[k]}, path.Child("matchLabels"))...)
	}
	for i, r := range sel.MatchExpressions {
		errs = append(errs, metav1validation.ValidateLabelSelectorRequirement(r, metav1validation.LabelSelectorValidationOptions{}, path.Child("matchExpressions").Index(i))...)
	}
	return errs
}

func appendFieldErrs(errs []error, list field.ErrorList) []error {
	for _, e := range list {
		errs = append(errs, e)
	}
	return errs
}

// profilesYAML is the profile file the ConfigMap carries: the configured one, or the shipped
// examples.
func (c *Config) profilesYAML() []byte {
	if strings.TrimSpace(c.Profiles) == "" {
		return profile.Examples
	}
	return []byte(c.Profiles)
}
