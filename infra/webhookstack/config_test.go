package webhookstack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag/colors"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func TestInvalidConfigFailsNamingTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config map[string]string
		want   string
	}{
		{"image missing", map[string]string{"image": ""}, `ai-webhook:image is required`},
		{"failurePolicy wrong case", map[string]string{"failurePolicy": "fail"}, `ai-webhook:failurePolicy must be "Ignore" or "Fail", got "fail"`},
		{"timeout zero", map[string]string{"timeoutSeconds": "0"}, `ai-webhook:timeoutSeconds must be between 1 and 30, got 0`},
		{"timeout too long", map[string]string{"timeoutSeconds": "31"}, `ai-webhook:timeoutSeconds must be between 1 and 30, got 31`},
		{"timeout not a number", map[string]string{"timeoutSeconds": "ten"}, `ai-webhook:timeoutSeconds must be an integer, got "ten"`},
		{"createNamespace not a bool", map[string]string{"createNamespace": "yes please"}, `ai-webhook:createNamespace must be true or false, got "yes please"`},
		{"unknown selector mode", map[string]string{"namespaceSelector": `{"mode":"optin"}`}, `ai-webhook:namespaceSelector.mode must be "optIn", "optOut", "all" or "custom", got "optin"`},
		{"selector field typo", map[string]string{"namespaceSelector": `{"mod":"all"}`}, `ai-webhook:namespaceSelector must be a JSON object matching the documented shape: json: unknown field "mod"`},
		{"custom without selector", map[string]string{"namespaceSelector": `{"mode":"custom"}`}, `ai-webhook:namespaceSelector mode "custom" needs matchLabels or matchExpressions`},
		{"labels outside custom", map[string]string{"namespaceSelector": `{"mode":"optIn","matchLabels":{"a":"b"}}`}, `matchLabels and matchExpressions are used only with mode "custom"`},
		{"custom with a bad operator", map[string]string{"namespaceSelector": `{"mode":"custom","matchExpressions":[{"key":"team","operator":"Is","values":["ml"]}]}`}, `ai-webhook:namespaceSelector.matchExpressions[0].operator: Invalid value: "Is"`},
		{"bad object selector", map[string]string{"objectSelector": `{"matchLabels":{"bad key!":"x"}}`}, `ai-webhook:objectSelector.matchLabels`},
		{"no rules", map[string]string{"rules": `[]`}, `ai-webhook:rules must list at least one rule`},
		{"bad operation", map[string]string{"rules": `[{"operations":["PATCH"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}]`}, `ai-webhook:rules[0].operations must hold "CREATE", "UPDATE", "DELETE", "CONNECT" or "*", got "PATCH"`},
		{"replicas zero", map[string]string{"replicas": "0"}, `ai-webhook:replicas must be at least 1, got 0`},
		{"bad namespace", map[string]string{"namespace": "AI_Webhook"}, `ai-webhook:namespace must be a valid namespace name, got "AI_Webhook"`},
		{"short webhook name", map[string]string{"webhookName": "example.com"}, `ai-webhook:webhookName must be a fully qualified name of at least three segments`},
		{"bad pull policy", map[string]string{"imagePullPolicy": "always"}, `ai-webhook:imagePullPolicy must be "Always", "IfNotPresent" or "Never", got "always"`},
		{"bad log level", map[string]string{"logLevel": "verbose"}, `ai-webhook:logLevel must be "debug", "info", "warn" or "error", got "verbose"`},
		{"bad quantity", map[string]string{"resources": `{"limits":{"memory":"lots"}}`}, `ai-webhook:resources.limits.memory must be a quantity such as 100m or 128Mi, got "lots"`},
		{"request over limit", map[string]string{"resources": `{"requests":{"memory":"1Gi"}}`}, `ai-webhook:resources.requests.memory (1Gi) must not exceed resources.limits.memory (256Mi)`},
		{"cert outlives CA", map[string]string{"certValidityHours": "100000"}, `ai-webhook:certValidityHours must be between 1 and caValidityHours (87600), got 100000`},
		{"renewal window too wide", map[string]string{"earlyRenewalHours": "8760"}, `ai-webhook:earlyRenewalHours must be at least 0 and less than certValidityHours (8760), got 8760`},
		{"profiles not YAML", map[string]string{"profiles": "profiles: ["}, `ai-webhook:profiles is not a valid profile file: profiles:`},
		{"profiles with an unknown field", map[string]string{"profiles": "profiles:\n- name: x\n  colour: blue\n"}, `ai-webhook:profiles is not a valid profile file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantRefused(t, tt.config, tt.want)
		})
	}
}

// wantRefused runs the program with config and wants it refused with an error containing want,
// before it registered anything but the stack.
func wantRefused(t *testing.T, config map[string]string, want string) {
	t.Helper()
	res, err := run(t, config)
	if err == nil {
		t.Fatalf("config %v was accepted", config)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error\n%v\ndoes not contain\n%s", err, want)
	}
	for _, r := range res.resources {
		if r.Type != "pulumi:pulumi:Stack" {
			t.Errorf("invalid config still registered %s %q", r.Type, r.Name)
		}
	}
}

func TestInvalidConfigReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	_, err := run(t, map[string]string{"failurePolicy": "Sometimes", "replicas": "0", "domain": "Not A Domain"})
	if err == nil {
		t.Fatal("invalid config was accepted")
	}
	var cfgErr *ConfigError
	if !errors.As(err, &cfgErr) {
		t.Fatalf("error is not a *ConfigError: %v", err)
	}
	want(t, "problems", len(cfgErr.Problems), 3)
	for _, key := range []string{"ai-webhook:failurePolicy", "ai-webhook:replicas", "ai-webhook:domain"} {
		if !strings.Contains(err.Error(), "\n  "+key+" ") {
			t.Errorf("error does not list %s on a line of its own:\n%v", key, err)
		}
	}
}

// Label selectors are maps; their problems must still come in the same order every run.
func TestSelectorProblemsComeInKeyOrder(t *testing.T) {
	t.Parallel()
	config := map[string]string{
		"objectSelector":    `{"matchLabels":{"d!":"1","b!":"2","a!":"3","c!":"4"}}`,
		"namespaceSelector": `{"mode":"custom","matchLabels":{"team":"ml","x y":"1","-z":"v!"}}`,
	}
	_, first := run(t, config)
	if first == nil {
		t.Fatal("invalid selectors were accepted")
	}
	for range 10 {
		if _, err := run(t, config); err == nil || err.Error() != first.Error() {
			t.Fatalf("problems in another order:\n%v\nthen:\n%v", first, err)
		}
	}
	if a, d := strings.Index(first.Error(), `"a!"`), strings.Index(first.Error(), `"d!"`); a < 0 || d < a {
		t.Errorf("objectSelector labels not reported in key order:\n%v", first)
	}
}

// projectConfig is the config block of Pulumi.yaml.
type projectConfig map[string]struct {
	Type        string         `json:"type"`
	Description string         `json:"description"`
	Default     any            `json:"default"`
	Items       map[string]any `json:"items"`
}

func readYAML(t *testing.T, file string, into any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep 87600 as written, not 87600.0
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// configText renders a YAML value the way the Pulumi CLI hands it to the program: scalars as
// their text, objects and arrays as JSON.
func configText(t *testing.T, v any) string {
	t.Helper()
	switch v := v.(type) {
	case string:
		return v
	case bool, json.Number:
		return fmt.Sprint(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

func TestPulumiYAMLDeclaresEveryKeyWithTheProgramDefault(t *testing.T) {
	t.Parallel()
	var project struct {
		Name   string        `json:"name"`
		Main   string        `json:"main"`
		Config projectConfig `json:"config"`
	}
	readYAML(t, "../../Pulumi.yaml", &project)
	want(t, "project name", project.Name, ConfigNamespace)
	want(t, "main", project.Main, "infra/")

	// Read the declared defaults onto an empty Config: a key missing a default, or a default
	// differing from defaultConfig, shows up as a difference.
	defaults := map[string]string{}
	for key, decl := range project.Config {
		if decl.Default != nil {
			defaults[key] = configText(t, decl.Default)
		}
	}
	fromYAML, r := readConfig(t, Config{}, defaults)
	if len(r.errs) > 0 {
		t.Fatal(r.errs)
	}
	if goDefaults := defaultConfig(); !reflect.DeepEqual(fromYAML, goDefaults) {
		t.Errorf("Pulumi.yaml defaults differ from defaultConfig:\n yaml: %+v\n   go: %+v", fromYAML, goDefaults)
	}
	// The keys the program reads, with their types, are the keys Pulumi.yaml declares.
	want(t, "declared keys", slices.Sorted(maps.Keys(project.Config)), slices.Sorted(maps.Keys(r.keyTypes)))
	for _, key := range slices.Sorted(maps.Keys(r.keyTypes)) {
		decl, ok := project.Config[key]
		if !ok {
			continue // reported above
		}
		want(t, key+" type", decl.Type, r.keyTypes[key])
		if decl.Description == "" {
			t.Errorf("Pulumi.yaml gives %q no description", key)
		}
	}
	// Not required by Pulumi: backend policy runs no server; the program refuses an empty image
	// for the others ("image missing" above).
	if decl := project.Config["image"]; decl.Default != "" {
		t.Errorf("image default in Pulumi.yaml %v, want \"\"", decl.Default)
	}
}

func TestProjectAndDevStackFilesLoadWithThePulumiSDK(t *testing.T) {
	t.Parallel()
	project, err := workspace.LoadProject("../../Pulumi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := workspace.LoadProjectStack(diag.DefaultSink(io.Discard, io.Discard, diag.FormatOptions{Color: colors.Never}), project, "../../Pulumi.dev.yaml"); err != nil {
		t.Fatal(err)
	}
}

func TestDevStackDeploys(t *testing.T) {
	t.Parallel()
	var stack struct {
		Config map[string]any `json:"config"`
	}
	readYAML(t, "../../Pulumi.dev.yaml", &stack)
	config := map[string]string{}
	for key, value := range stack.Config {
		name, ok := strings.CutPrefix(key, ConfigNamespace+":")
		if !ok {
			continue // provider keys such as kubernetes:context
		}
		config[name] = configText(t, value)
	}
	res := mustRun(t, config)
	want(t, "image", str(res.one(t, typeDeployment).Inputs, "spec.template.spec.containers.0.image"), "ai-webhook:dev")
}

// A value given in config replaces the default's arrays whole (a user's rules[0] keeps nothing of
// the default rules[0], not even its scope) while objects still merge with the default key by
// key, and keys not given keep their defaults.
func TestGivenArraysReplaceTheDefaultAndAbsentKeysKeepIt(t *testing.T) {
	t.Parallel()
	namespaced := admissionregistrationv1.NamespacedScope
	tests := []struct {
		name   string
		config map[string]string
		check  func(t *testing.T, got Config)
	}{
		{"rule without scope has no scope", map[string]string{
			"rules": `[{"operations":["CREATE","UPDATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}]`,
		}, func(t *testing.T, got Config) {
			want(t, "rules", got.Rules, []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}})
		}},
		{"shorter rule lists keep none of the default's", map[string]string{
			"rules": `[{"operations":["CREATE"],"apiGroups":["apps"],"apiVersions":["v1"],"resources":["deployments"]}]`,
		}, func(t *testing.T, got Config) {
			want(t, "rules[0].apiGroups", got.Rules[0].APIGroups, []string{"apps"})
			want(t, "rules[0].resources", got.Rules[0].Resources, []string{"deployments"})
			want(t, "rules[0].scope", got.Rules[0].Scope, (*admissionregistrationv1.ScopeType)(nil))
		}},
		{"rule with a scope keeps it", map[string]string{
			"rules": `[{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"],"scope":"*"},` +
				`{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}]`,
		}, func(t *testing.T, got Config) {
			want(t, "rules[0].scope", *got.Rules[0].Scope, admissionregistrationv1.AllScopes)
			want(t, "rules[1].scope", got.Rules[1].Scope, (*admissionregistrationv1.ScopeType)(nil))
		}},
		{"nested array in an object replaces, sibling keys merge", map[string]string{
			"namespaceSelector": `{"matchExpressions":[{"key":"tier","operator":"Exists"}]}`,
		}, func(t *testing.T, got Config) {
			want(t, "namespaceSelector", got.NamespaceSelector, NamespaceSelector{
				Mode:             ModeOptIn, // not given: the default
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}},
			})
		}},
		{"absent keys keep their defaults", map[string]string{
			"replicas": "3",
		}, func(t *testing.T, got Config) {
			want(t, "replicas", got.Replicas, 3)
			def := defaultConfig()
			want(t, "rules", got.Rules, def.Rules)
			want(t, "rules[0].scope", *got.Rules[0].Scope, namespaced)
			want(t, "namespaceSelector", got.NamespaceSelector, def.NamespaceSelector)
			want(t, "resources", got.Resources, def.Resources)
		}},
		{"one path in an object keeps the other defaults", map[string]string{
			"resources": `{"limits":{"memory":"512Mi"}}`,
		}, func(t *testing.T, got Config) {
			want(t, "resources", got.Resources, Resources{
				Requests: map[corev1.ResourceName]string{corev1.ResourceCPU: "50m", corev1.ResourceMemory: "64Mi"},
				Limits:   map[corev1.ResourceName]string{corev1.ResourceCPU: "1", corev1.ResourceMemory: "512Mi"},
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, r := readConfig(t, defaultConfig(), tt.config)
			if len(r.errs) > 0 {
				t.Fatal(r.errs)
			}
			tt.check(t, got)
		})
	}
}

// readConfig runs the config reader over base with the given "ai-webhook:" values (the SDK's
// config functions need a Pulumi context: the mocks give one) and returns what it read.
func readConfig(t *testing.T, base Config, values map[string]string) (Config, *configReader) {
	t.Helper()
	cfg := map[string]string{}
	for k, v := range values {
		cfg[ConfigNamespace+":"+k] = v
	}
	r := &configReader{}
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		r.c = config.New(ctx, ConfigNamespace)
		r.readInto(&base)
		return nil
	}, pulumi.WithMocks(ConfigNamespace, "test", &mocks{}), func(info *pulumi.RunInfo) { info.Config = cfg })
	if err != nil {
		t.Fatal(err)
	}
	return base, r
}

// The SDK's TryInt would read 010 as octal 8: an integer key is read in decimal, as written.
func TestIntegerKeysAreDecimal(t *testing.T) {
	t.Parallel()
	got, r := readConfig(t, defaultConfig(), map[string]string{"replicas": "010", "timeoutSeconds": " 7 "})
	if len(r.errs) > 0 {
		t.Fatal(r.errs)
	}
	want(t, "replicas", got.Replicas, 10)
	want(t, "timeoutSeconds", got.TimeoutSeconds, 7)
}
