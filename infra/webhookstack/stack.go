// Package webhookstack is the Pulumi program that deploys ai-webhook: certificates from
// pulumi-tls, the server's Deployment and Service, and the MutatingWebhookConfiguration whose
// caBundle is the generated CA. Program is the entry point shared by `pulumi up` (infra/main.go)
// and the Automation API.
package webhookstack

import (
	padmissionv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/admissionregistration/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ComponentType is the Pulumi type of the component that owns every resource.
const ComponentType = "ai-webhook:index:WebhookStack"

// Stack output names.
const (
	OutputMutatingWebhookName = "mutating_webhook_name"
	OutputNamespace           = "namespace"
	OutputServiceName         = "service_name"
	OutputDeploymentName      = "deployment_name"
	OutputCACertPEM           = "ca_cert_pem"
	OutputServingCertExpiry   = "serving_cert_expiry"
)

// Program reads and validates the stack configuration, builds the WebhookStack and exports its
// outputs. Nothing is registered when the configuration is invalid.
func Program(ctx *pulumi.Context) error {
	cfg, err := LoadConfig(ctx)
	if err != nil {
		return err
	}
	stack, err := NewWebhookStack(ctx, "ai-webhook", cfg)
	if err != nil {
		return err
	}
	for name, value := range stack.outputs() {
		ctx.Export(name, value)
	}
	return nil
}

// WebhookStack is one ai-webhook installation. Its outputs carry no key material.
type WebhookStack struct {
	pulumi.ResourceState

	// MutatingWebhookName is the created MutatingWebhookConfiguration's metadata.name.
	MutatingWebhookName pulumi.StringOutput
	Namespace           pulumi.StringOutput
	ServiceName         pulumi.StringOutput
	DeploymentName      pulumi.StringOutput
	// CACertPEM is the CA certificate behind the webhook's caBundle (public).
	CACertPEM pulumi.StringOutput
	// ServingCertExpiry is the serving certificate's validityEndTime (RFC 3339).
	ServingCertExpiry pulumi.StringOutput
}

// NewWebhookStack registers the component and all its children. cfg must have passed Validate.
func NewWebhookStack(ctx *pulumi.Context, name string, cfg Config, opts ...pulumi.ResourceOption) (*WebhookStack, error) {
	return newWebhookStack(ctx, name, cfg, readPrevious, opts...)
}

// newWebhookStack is NewWebhookStack with the last update's outputs read by readPrev (certs_trust.go)
// once the component is registered; the mock tests give a fixed value.
func newWebhookStack(ctx *pulumi.Context, name string, cfg Config,
	readPrev func(*pulumi.Context, pulumi.Resource) (previous, error), opts ...pulumi.ResourceOption,
) (*WebhookStack, error) {
	stack := &WebhookStack{}
	if err := ctx.RegisterComponentResource(ComponentType, name, stack, opts...); err != nil {
		return nil, err
	}
	prev, err := readPrev(ctx, stack)
	if err != nil {
		// A real engine has the root Stack's state once the component is registered; without
		// its outputs the stack is deployed as a first install (one CA in caBundle, the
		// configuration after the Deployment).
		_ = ctx.Log.Warn(err.Error()+"; deploying as a first install", nil)
	}
	child := pulumi.Parent(stack)
	if cfg.Backend == BackendPolicy { // no server: only policies and bindings (backend.go)
		return newPolicyStack(ctx, name, cfg, stack, child)
	}

	namespace, err := newNamespace(ctx, name, cfg, child)
	if err != nil {
		return nil, err
	}
	certs, err := newCertificates(ctx, name, cfg, namespace, prev, child)
	if err != nil {
		return nil, err
	}
	readers, err := newClusterReader(ctx, name, cfg, namespace, child)
	if err != nil {
		return nil, err
	}
	var policies []pulumi.Resource // backend auto: the webhook skips their Pods only once they exist
	if cfg.Backend == BackendAuto {
		if policies, _, err = newPolicies(ctx, name, cfg, child); err != nil {
			return nil, err
		}
	}
	// Rolling in place, the webhook configuration (its caBundle) is updated before the Pods
	// roll; otherwise it waits for them (previous.inPlace).
	var mwc *padmissionv1.MutatingWebhookConfiguration
	workOpts := []pulumi.ResourceOption{child, pulumi.DependsOn(readers)}
	if prev.inPlace(cfg) {
		if mwc, err = newMutatingWebhook(ctx, name, cfg, namespace, certs, pulumi.String(cfg.Name), policies, child); err != nil {
			return nil, err
		}
		workOpts = append(workOpts, pulumi.DependsOn([]pulumi.Resource{mwc}))
	}
	// The server's first list must not meet a 403: the binding exists before the Deployment.
	work, err := newWorkload(ctx, name, cfg, namespace, certs, workOpts...)
	if err != nil {
		return nil, err
	}
	if err := newAutoscaler(ctx, name, cfg, namespace, work, child); err != nil {
		return nil, err
	}
	if err := newNetworkPolicy(ctx, name, cfg, cfg.MetricsPort, namespace, child); err != nil {
		return nil, err
	}
	if err := newClaimTemplates(ctx, name, cfg, child); err != nil {
		return nil, err
	}
	if err := newMonitoring(ctx, name, cfg, namespace, child); err != nil {
		return nil, err
	}
	if mwc == nil {
		after := append([]pulumi.Resource{work.deployment, work.service}, policies...)
		if mwc, err = newMutatingWebhook(ctx, name, cfg, namespace, certs, work.service.Metadata.Name().Elem(), after, child); err != nil {
			return nil, err
		}
	}

	stack.MutatingWebhookName = mwc.Metadata.Name().Elem()
	stack.Namespace = namespace
	stack.ServiceName = work.service.Metadata.Name().Elem()
	stack.DeploymentName = work.deployment.Metadata.Name().Elem()
	stack.CACertPEM = certs.caCertPEM
	stack.ServingCertExpiry = certs.servingCertExpiry
	if err := ctx.RegisterResourceOutputs(stack, stack.outputs()); err != nil {
		return nil, err
	}
	return stack, nil
}

func (s *WebhookStack) outputs() pulumi.Map {
	return pulumi.Map{
		OutputMutatingWebhookName: s.MutatingWebhookName,
		OutputNamespace:           s.Namespace,
		OutputServiceName:         s.ServiceName,
		OutputDeploymentName:      s.DeploymentName,
		OutputCACertPEM:           s.CACertPEM,
		OutputServingCertExpiry:   s.ServingCertExpiry,
	}
}
