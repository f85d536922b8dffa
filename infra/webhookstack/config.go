package webhookstack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
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
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// ConfigNamespace is the Pulumi config namespace of every key this program reads
// ("ai-webhook:image", ...). It is also the project name in Pulumi.yaml.
const ConfigNamespace = "ai-webhook"

// Namespace selector modes (config key namespaceSelector.mode).
const (
	// ModeOptIn calls the webhook only for namespaces labelled <domain>/inject=enabled.
	ModeOptIn = "optIn"
	// ModeOptOut calls the webhook for every namespace not labelled <domain>/inject=disabled.
	ModeOptOut = "optOut"
	// ModeAll calls the webhook for every namespace.
	ModeAll = "all"
	// ModeCustom uses the matchLabels and matchExpressions given in config.
	ModeCustom = "custom"
)

// Config is the whole stack configuration: one field per "ai-webhook:<key>" config key, the key
// being the field's json tag. Strings, integers and booleans are plain config values; the other
// fields are JSON objects or arrays (set them with `pulumi config set --path`). Keys that are not
// set keep the value from defaultConfig: objects are merged key by key with the default, arrays
// replace the default array whole. Pulumi.yaml declares the same keys and defaults (a test
// keeps the two equal).
type Config struct {
	// Image is the ai-webhook container image. Required: there is no registry to default to.
	Image           string            `json:"image"`
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy"`
	// Namespace the webhook runs in; created unless CreateNamespace is false.
	Namespace         string    `json:"namespace"`
	CreateNamespace   bool      `json:"createNamespace"`
	Replicas          int       `json:"replicas"`
	PriorityClassName string    `json:"priorityClassName"`
	Resources         Resources `json:"resources"`
	LogLevel          string    `json:"logLevel"`
	// Domain prefixes the label and annotation keys the webhook reads and writes
	// (<domain>/profile, <domain>/inject, <domain>/injected).
	Domain string `json:"domain"`
	// Profiles is a profile file (YAML). Empty means the shipped examples (profile.Examples).
	Profiles string `json:"profiles"`

	WebhookConfigName string                                       `json:"webhookConfigName"`
	WebhookName       string                                       `json:"webhookName"`
	FailurePolicy     admissionregistrationv1.FailurePolicyType    `json:"failurePolicy"`
	TimeoutSeconds    int                                          `json:"timeoutSeconds"`
	NamespaceSelector NamespaceSelector                            `json:"namespaceSelector"`
	ObjectSelector    metav1.LabelSelector                         `json:"objectSelector"`
	Rules             []admissionregistrationv1.RuleWithOperations `json:"rules"`

	// CAValidityHours is the lifetime of the self-signed CA behind caBundle.
	CAValidityHours int `json:"caValidityHours"`
	// CertValidityHours is the lifetime of the serving certificate.
	CertValidityHours int `json:"certValidityHours"`
	// EarlyRenewalHours: a `pulumi up` this many hours (or fewer) before the serving certificate
	// expires issues a new one. Nothing renews in the background.
	EarlyRenewalHours int `json:"earlyRenewalHours"`
}

// NamespaceSelector chooses the namespaces whose Pods are sent to the webhook. Whatever the mode,
// kube-system, kube-public, kube-node-lease and the webhook's own namespace are excluded.
type NamespaceSelector struct {
	Mode string `json:"mode"`
	// MatchLabels and MatchExpressions are used in mode "custom" only.
	MatchLabels      map[string]string                 `json:"matchLabels,omitempty"`
	MatchExpressions []metav1.LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// Resources are the container's requests and limits. A key set to "" is left out, e.g.
// `pulumi config set --path resources.limits.cpu ""` removes the CPU limit.
type Resources struct {
	Requests map[corev1.ResourceName]string `json:"requests,omitempty"`
	Limits   map[corev1.ResourceName]string `json:"limits,omitempty"`
}

// defaultConfig is the one place defaults are written down in Go.
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
		Domain:            "ai.example.com",
		WebhookConfigName: "ai-mutating-webhook",
		WebhookName:       "ai.example.com",
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
		CertValidityHours: 2160,  // 90 days
		EarlyRenewalHours: 720,   // renew on any `pulumi up` in the last 30 days
	}
}

// LoadConfig reads every "ai-webhook:" key over the defaults, then validates the result. The
// error lists every problem, each naming its key and what is allowed.
func LoadConfig(ctx *pulumi.Context) (Config, error) {
	cfg := defaultConfig()
	c := config.New(ctx, ConfigNamespace)
	if errs := decodeConfig(&cfg, func(key string) (string, bool) {
		v, err := c.Try(key)
		return v, err == nil
	}); len(errs) > 0 {
		return Config{}, &ConfigError{Problems: errs}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeConfig sets each field of cfg whose key lookup finds a value. Config values arrive as
// text: strings verbatim, integers and booleans as their literals, objects and arrays as JSON.
func decodeConfig(cfg *Config, lookup func(key string) (string, bool)) []error {
	var errs []error
	v := reflect.ValueOf(cfg).Elem()
	for i := range v.NumField() {
		key := configKey(v.Type().Field(i))
		raw, ok := lookup(key)
		if !ok {
			continue
		}
		if err := decodeValue(raw, v.Field(i)); err != nil {
			errs = append(errs, fmt.Errorf("%s:%s %w", ConfigNamespace, key, err))
		}
	}
	return errs
}

func configKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

func decodeValue(raw string, field reflect.Value) error {
	switch field.Kind() {
	case reflect.String:
		field.SetString(raw)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("must be an integer, got %q", raw)
		}
		field.SetInt(int64(n))
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", raw)
		}
		field.SetBool(b)
	default:
		// `pulumi config set --path` stores true/false and integers as JSON booleans and numbers,
		// but every leaf of our objects is a string (a label value, a quantity such as cpu: 1):
		// read such scalars as their text.
		var tree any
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&tree); err != nil {
			return fmt.Errorf("must be a JSON %s: %w", jsonKind(field), err)
		}
		text, err := json.Marshal(scalarsAsText(tree))
		if err != nil {
			return err
		}
		// Decoding onto the default merges objects key by key, so setting one path (say
		// resources.limits.memory) keeps the other defaults. Arrays are different: encoding/json
		// decodes an array into the existing elements of the slice, so a rule given without scope
		// would keep the default rule's scope. Every array the value gives replaces the default's
		// outright. Unknown fields are typos: refuse them.
		clearGivenArrays(tree, field)
		dec = json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(field.Addr().Interface()); err != nil {
			return fmt.Errorf("must be a JSON %s matching the documented shape: %w", jsonKind(field), err)
		}
	}
	return nil
}

// clearGivenArrays sets to nil every slice in v that tree, the JSON about to be decoded onto v,
// gives as an array, so the decoded array replaces the slice instead of being decoded element by
// element onto it. Objects are followed into struct fields (matched to keys as encoding/json does)
// and through non-nil pointers; map values need nothing, encoding/json decodes them from zero.
func clearGivenArrays(tree any, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			clearGivenArrays(tree, v.Elem())
		}
	case reflect.Slice:
		if _, ok := tree.([]any); ok && v.CanSet() {
			v.SetZero()
		}
	case reflect.Array:
		if elems, ok := tree.([]any); ok {
			for i := range min(len(elems), v.Len()) {
				clearGivenArrays(elems[i], v.Index(i))
			}
		}
	case reflect.Struct:
		obj, ok := tree.(map[string]any)
		if !ok {
			return
		}
		fields := jsonFields(v, 0, nil)
		for key, sub := range obj {
			if f, ok := jsonField(fields, key); ok {
				clearGivenArrays(sub, f)
			}
		}
	}
}

// namedField is a struct field under the name encoding/json reads it by; depth counts the
// embedded structs it is promoted through.
type namedField struct {
	name  string
	depth int
	value reflect.Value
}

// jsonFields lists the fields of struct v that encoding/json decodes into, the fields of embedded
// structs without a json name included (as json:",inline" in the Kubernetes API types).
func jsonFields(v reflect.Value, depth int, out []namedField) []namedField {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if f.Anonymous && name == "" {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue // nothing in it to clear
				}
				fv = fv.Elem()
			}
			if fv.Kind() == reflect.Struct {
				out = jsonFields(fv, depth+1, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, namedField{name, depth, fv})
	}
	return out
}

// jsonField finds the field encoding/json decodes key into: an exact name before a
// case-insensitive one, the shallowest first.
func jsonField(fields []namedField, key string) (reflect.Value, bool) {
	for _, match := range []func(string) bool{
		func(name string) bool { return name == key },
		func(name string) bool { return strings.EqualFold(name, key) },
	} {
		var best *namedField
		for i, f := range fields {
			if match(f.name) && (best == nil || f.depth < best.depth) {
				best = &fields[i]
			}
		}
		if best != nil {
			return best.value, true
		}
	}
	return reflect.Value{}, false
}

// scalarsAsText replaces the numbers and booleans in a decoded JSON tree by their text.
func scalarsAsText(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = scalarsAsText(e)
		}
	case []any:
		for i, e := range v {
			v[i] = scalarsAsText(e)
		}
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return v
}

func jsonKind(v reflect.Value) string {
	if v.Kind() == reflect.Slice {
		return "array"
	}
	return "object"
}

// Validate checks every key and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%s %s", ConfigNamespace, key, fmt.Sprintf(format, args...)))
	}
	root := func(key string) *field.Path { return field.NewPath(ConfigNamespace + ":" + key) }

	if c.Image == "" {
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

	if msgs := validation.IsDNS1123Subdomain(c.WebhookConfigName); len(msgs) > 0 {
		bad("webhookConfigName", "must be a valid object name, got %q: %s", c.WebhookConfigName, strings.Join(msgs, "; "))
	}
	// The API server wants a fully qualified webhook name of at least three segments.
	if msgs := validation.IsDNS1123Subdomain(c.WebhookName); len(msgs) > 0 || strings.Count(c.WebhookName, ".") < 2 {
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
		sel := &metav1.LabelSelector{MatchLabels: ns.MatchLabels, MatchExpressions: ns.MatchExpressions}
		errs = appendFieldErrs(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, root("namespaceSelector")))
	default:
		bad("namespaceSelector.mode", `must be "optIn", "optOut", "all" or "custom", got %q`, ns.Mode)
	}
	errs = appendFieldErrs(errs, metav1validation.ValidateLabelSelector(&c.ObjectSelector, metav1validation.LabelSelectorValidationOptions{}, root("objectSelector")))
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
	if len(errs) > 0 {
		return &ConfigError{Problems: errs}
	}
	return nil
}

// ConfigError lists every problem found in the stack configuration, one per line.
type ConfigError struct{ Problems []error }

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid stack configuration (%d problem(s)); fix with `pulumi config set [--path] KEY VALUE`:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(p.Error(), "\n", "\n    "))
	}
	return b.String()
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
