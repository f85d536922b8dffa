package webhookstack

import (
	"fmt"

	padmissionv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/admissionregistration/v1"
	pmetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// mutatePath is where the server accepts AdmissionReview requests.
const mutatePath = "/mutate"

// notMirrorPod skips mirror Pods (static Pods as the kubelet reports them): they cannot be
// changed, so mutating them is pointless. `object` is null for DELETE, hence the first clause.
var notMirrorPod = admissionregistrationv1.MatchCondition{
	Name: "not-mirror-pod",
	Expression: fmt.Sprintf("object == null || !has(object.metadata.annotations) || !(%q in object.metadata.annotations)",
		corev1.MirrorPodAnnotationKey),
}

// newMutatingWebhook registers the MutatingWebhookConfiguration, after the resources in after.
// Pulumi awaits a Deployment's ready replicas and a Service's endpoints but not a webhook
// configuration: on a first install (or a move) it comes after both, so the API server never
// calls a webhook that is not serving yet (see previous.inPlace for the other order).
func newMutatingWebhook(ctx *pulumi.Context, name string, cfg Config, namespace pulumi.StringOutput, certs *certificates, service pulumi.StringInput, after []pulumi.Resource, opts ...pulumi.ResourceOption) (*padmissionv1.MutatingWebhookConfiguration, error) {
	webhook := &padmissionv1.MutatingWebhookArgs{
		Name: pulumi.String(cfg.WebhookName),
		ClientConfig: &padmissionv1.WebhookClientConfigArgs{
			Service: &padmissionv1.ServiceReferenceArgs{
				Namespace: namespace,
				Name:      service,
				Path:      pulumi.String(mutatePath),
				Port:      pulumi.Int(servicePort),
			},
			CaBundle: certs.caBundle, // nil in certManager mode: the CA injector fills it
		},
		Rules:                   rulesArgs(cfg.Rules),
		FailurePolicy:           pulumi.String(string(cfg.FailurePolicy)),
		MatchPolicy:             pulumi.String(string(admissionregistrationv1.Equivalent)),
		NamespaceSelector:       labelSelectorArgs(NamespaceSelectorFor(cfg.NamespaceSelector, cfg.Domain, cfg.Namespace)),
		MatchConditions:         matchConditionArray(WebhookMatchConditions(cfg)),
		SideEffects:             pulumi.String(string(admissionregistrationv1.SideEffectClassNone)),
		TimeoutSeconds:          pulumi.Int(cfg.TimeoutSeconds),
		AdmissionReviewVersions: pulumi.StringArray{pulumi.String(admissionregistrationv1.SchemeGroupVersion.Version)},
		ReinvocationPolicy:      pulumi.String(string(admissionregistrationv1.IfNeededReinvocationPolicy)),
	}
	if len(cfg.ObjectSelector.MatchLabels) > 0 || len(cfg.ObjectSelector.MatchExpressions) > 0 {
		webhook.ObjectSelector = labelSelectorArgs(cfg.ObjectSelector)
	}
	opts = append(opts, pulumi.DependsOn(after))
	meta := &pmetav1.ObjectMetaArgs{Name: pulumi.String(cfg.WebhookConfigName), Labels: commonLabels(cfg.Name)}
	if len(certs.webhookAnnotations) > 0 {
		meta.Annotations = certs.webhookAnnotations
	}
	return padmissionv1.NewMutatingWebhookConfiguration(ctx, name, &padmissionv1.MutatingWebhookConfigurationArgs{
		Metadata: meta,
		Webhooks: padmissionv1.MutatingWebhookArray{webhook},
	}, opts...)
}

func labelSelectorArgs(sel metav1.LabelSelector) *pmetav1.LabelSelectorArgs {
	out := &pmetav1.LabelSelectorArgs{}
	if len(sel.MatchLabels) > 0 {
		out.MatchLabels = pulumi.ToStringMap(sel.MatchLabels)
	}
	if len(sel.MatchExpressions) > 0 {
		exprs := make(pmetav1.LabelSelectorRequirementArray, len(sel.MatchExpressions))
		for i, r := range sel.MatchExpressions {
			exprs[i] = &pmetav1.LabelSelectorRequirementArgs{
				Key:      pulumi.String(r.Key),
				Operator: pulumi.String(string(r.Operator)),
				Values:   pulumi.ToStringArray(r.Values),
			}
		}
		out.MatchExpressions = exprs
	}
	return out
}

func rulesArgs(rules []admissionregistrationv1.RuleWithOperations) padmissionv1.RuleWithOperationsArray {
	out := make(padmissionv1.RuleWithOperationsArray, 0, len(rules))
	for _, r := range rules {
		ops := make([]string, len(r.Operations))
		for i, op := range r.Operations {
			ops[i] = string(op)
		}
		args := &padmissionv1.RuleWithOperationsArgs{
			Operations:  pulumi.ToStringArray(ops),
			ApiGroups:   pulumi.ToStringArray(r.APIGroups),
			ApiVersions: pulumi.ToStringArray(r.APIVersions),
			Resources:   pulumi.ToStringArray(r.Resources),
		}
		if r.Scope != nil {
			args.Scope = pulumi.String(string(*r.Scope))
		}
		out = append(out, args)
	}
	return out
}

func matchConditionArgs(c admissionregistrationv1.MatchCondition) *padmissionv1.MatchConditionArgs {
	return &padmissionv1.MatchConditionArgs{Name: pulumi.String(c.Name), Expression: pulumi.String(c.Expression)}
}
