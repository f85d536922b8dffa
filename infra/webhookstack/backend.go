package webhookstack

// The backend that applies the profiles (config key backend): the webhook server, compiled
// MutatingAdmissionPolicies with no server at all, or both, each Pod handled by exactly one.

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	padmissionv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/admissionregistration/v1"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	pmetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/ai-webhook/ai-webhook/webhook/policy"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// Values of Config.Backend.
const (
	// BackendWebhook serves every profile with the webhook server (the default).
	BackendWebhook = "webhook"
	// BackendPolicy deploys only MutatingAdmissionPolicies and their bindings: no Deployment,
	// Service or certificates. Every profile must compile (ai-webhook policy).
	BackendPolicy = "policy"
	// BackendAuto compiles what compiles and leaves the other profiles to the webhook, whose
	// match conditions skip every Pod a policy takes.
	BackendAuto = "auto"
)

// OutputPolicies names the stack output listing the policies deployed.
const OutputPolicies = "policies"

// policies compiles the configured profiles as the stack's bindings select namespaces.
func (c *Config) policies() ([]*policy.Compiled, []*policy.RefusedError, error) {
	set, err := profile.Parse(c.profilesYAML(), c.Domain)
	if err != nil {
		return nil, nil, err
	}
	compiled, refused := policy.CompileSet(set, c.policyOptions())
	return compiled, refused, nil
}

// policyOptions are the compiler's options for this configuration: the instance's names, its
// failure policy and the namespaces its bindings select.
func (c *Config) policyOptions() policy.Options {
	return policy.Options{Domain: c.Domain, Instance: c.Name,
		FailurePolicy:     admissionregistrationv1.FailurePolicyType(c.FailurePolicy),
		NamespaceSelector: NamespaceSelectorFor(c.NamespaceSelector, c.Domain, c.Namespace)}
}

// validateBackend reports a backend that cannot serve the configuration.
func (c *Config) validateBackend() []error {
	switch c.Backend {
	case BackendWebhook:
		return nil
	case BackendPolicy, BackendAuto:
	default:
		return []error{keyError("backend", `must be "webhook", "policy" or "auto", got %q`, c.Backend)}
	}
	_, refused, err := c.policies()
	if err != nil || c.Backend == BackendAuto {
		return nil // an invalid profile file is reported under profiles
	}
	var errs []error
	for _, r := range refused {
		errs = append(errs, keyError("backend", `"policy" cannot serve %v: use "auto" or "webhook"`, r))
	}
	if c.ClusterFacts {
		errs = append(errs, keyError("backend", `"policy" has no server to watch the cluster: clusterFacts needs "webhook" or "auto"`))
	}
	return errs
}

// newPolicies registers a MutatingAdmissionPolicy and its binding per profile that compiles,
// named after the instance (policy.Name): two instances never share one.
func newPolicies(ctx *pulumi.Context, name string, cfg Config, opts ...pulumi.ResourceOption) ([]pulumi.Resource, []string, error) {
	compiled, _, err := cfg.policies()
	if err != nil {
		return nil, nil, err
	}
	var out []pulumi.Resource
	var names []string
	for _, c := range compiled {
		for _, obj := range []struct {
			kind string
			spec any
		}{{"MutatingAdmissionPolicy", c.Policy.Spec}, {"MutatingAdmissionPolicyBinding", c.Binding.Spec}} {
			// Each binding after its policy.
			r, err := newAdmissionObject(ctx, name+"-"+strings.ToLower(obj.kind)+"-"+c.Policy.Name, cfg, obj.kind, c.Policy.Name, obj.spec, out, opts...)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, r)
		}
		names = append(names, c.Policy.Name)
	}
	return out, names, nil
}

// newAdmissionObject registers an admissionregistration.k8s.io/v1 object of the stack (an
// admission policy or a binding: the SDK has no type for the mutating ones) named objName,
// after the resources in after.
func newAdmissionObject(ctx *pulumi.Context, name string, cfg Config, kind, objName string, spec any, after []pulumi.Resource, opts ...pulumi.ResourceOption) (pulumi.Resource, error) {
	m, err := toMap(spec)
	if err != nil {
		return nil, err
	}
	return newCustomResource(ctx, name, &apiextensions.CustomResourceArgs{
		ApiVersion:  pulumi.String(admissionregistrationv1.SchemeGroupVersion.String()),
		Kind:        pulumi.String(kind),
		Metadata:    &pmetav1.ObjectMetaArgs{Name: pulumi.String(objName), Labels: commonLabels(cfg.Name)},
		OtherFields: kubernetes.UntypedArgs{"spec": m},
	}, append(opts, pulumi.DependsOn(after))...)
}

// WebhookMatchConditions are the webhook's: mirror Pods skipped and, with backend auto, every
// Pod that a compiled policy takes (all of its match conditions hold), so that each Pod is
// handled by exactly one backend. Pods the webhook refuses match no policy.
func WebhookMatchConditions(cfg Config) []admissionregistrationv1.MatchCondition {
	out := []admissionregistrationv1.MatchCondition{notMirrorPod}
	if cfg.Backend != BackendAuto {
		return out
	}
	compiled, _, err := cfg.policies()
	if err != nil || len(compiled) == 0 {
		return out
	}
	var taken []string
	for _, c := range compiled {
		var all []string
		for _, m := range c.Policy.Spec.MatchConditions {
			all = append(all, "("+m.Expression+")")
		}
		taken = append(taken, "("+strings.Join(all, " && ")+")")
	}
	return append(out, admissionregistrationv1.MatchCondition{Name: "not-served-by-a-policy",
		Expression: fmt.Sprintf("object == null || !(%s)", strings.Join(taken, " || "))})
}

// newPolicyStack is the whole stack with backend policy: the policies and their bindings, and
// outputs with no server (names empty).
func newPolicyStack(ctx *pulumi.Context, name string, cfg Config, stack *WebhookStack, opts ...pulumi.ResourceOption) (*WebhookStack, error) {
	_, names, err := newPolicies(ctx, name, cfg, opts...)
	if err != nil {
		return nil, err
	}
	// A mutating policy cannot refuse: this one refuses the Pods the webhook would.
	set, err := profile.Parse(cfg.profilesYAML(), cfg.Domain)
	if err != nil {
		return nil, err
	}
	vap, vapBinding := policy.Refusals(set, cfg.policyOptions())
	var prev []pulumi.Resource
	for _, obj := range []struct {
		kind string
		spec any
	}{{"ValidatingAdmissionPolicy", vap.Spec}, {"ValidatingAdmissionPolicyBinding", vapBinding.Spec}} {
		r, err := newAdmissionObject(ctx, name+"-"+strings.ToLower(obj.kind), cfg, obj.kind, vap.Name, obj.spec, prev, opts...)
		if err != nil {
			return nil, err
		}
		prev = append(prev, r)
	}
	none := pulumi.String("").ToStringOutput()
	stack.MutatingWebhookName, stack.ServiceName, stack.DeploymentName, stack.CACertPEM, stack.ServingCertExpiry = none, none, none, none, none
	stack.Namespace = pulumi.String(cfg.Namespace).ToStringOutput()
	ctx.Export(OutputPolicies, pulumi.ToStringArray(names))
	if err := ctx.RegisterResourceOutputs(stack, stack.outputs()); err != nil {
		return nil, err
	}
	return stack, nil
}

func matchConditionArray(conds []admissionregistrationv1.MatchCondition) padmissionv1.MatchConditionArray {
	out := make(padmissionv1.MatchConditionArray, len(conds))
	for i, c := range conds {
		out[i] = matchConditionArgs(c)
	}
	return out
}
