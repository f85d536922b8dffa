package webhookstack

import (
	"strconv"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	pmetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/utilities"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// cert-manager's API (cert-manager.io/v1) as the stack uses it.
const (
	certManagerGroup      = "cert-manager.io"
	certManagerAPIVersion = certManagerGroup + "/v1"
	// InjectCAFromAnnotation on a webhook configuration makes cert-manager's CA injector copy the
	// named Certificate's CA (its Secret's ca.crt) into every caBundle.
	InjectCAFromAnnotation = "cert-manager.io/inject-ca-from"
	// WaitForAnnotation is pulumi-kubernetes' generic await: the resource is ready once the
	// JSONPath WaitForCABundle names exists.
	WaitForAnnotation = "pulumi.com/waitFor"
	WaitForCABundle   = "jsonpath={.webhooks[0].clientConfig.caBundle}"
)

// CertManagerObject is one cert-manager object the stack creates in the webhook's namespace.
type CertManagerObject struct {
	Kind string // Issuer or Certificate
	Name string
	Spec map[string]any
}

// APIVersion is the object's apiVersion.
func (CertManagerObject) APIVersion() string { return certManagerAPIVersion }

// ServingCertificateName is the cert-manager Certificate that issues the serving certificate
// (certManager mode); the webhook configuration's inject-ca-from annotation names it.
func ServingCertificateName(cfg Config) string { return cfg.Name + "-serving" }

// InjectCAFrom is the value of the webhook configuration's inject-ca-from annotation
// (certManager mode): the serving Certificate, as namespace/name.
func InjectCAFrom(cfg Config) string { return cfg.Namespace + "/" + ServingCertificateName(cfg) }

// ServingSecretName is the Secret cert-manager writes the serving certificate to and the Pods
// mount (certManager mode). cert-manager renews it in place; the server's hot reload serves the
// new pair without a restart.
func ServingSecretName(cfg Config) string { return cfg.Name + "-tls" }

// CertManagerObjects are the cert-manager objects of certManager mode, in creation order.
// Without an issuerRef in config: a self-signed Issuer, a CA Certificate it signs (caValidityHours),
// a CA Issuer backed by the CA's Secret, then the serving Certificate (certValidityHours, renewed
// earlyRenewalHours before expiry, a new ECDSA P-256 key each time) for the Service's DNS names.
// With an issuerRef, only the serving Certificate, issued by that issuer.
func CertManagerObjects(cfg Config) []CertManagerObject {
	var objects []CertManagerObject
	ref := cfg.Certificates.IssuerRef
	if ref == (IssuerRef{}) {
		selfSigned, caName := cfg.Name+"-selfsigned", cfg.Name+"-ca"
		objects = append(objects,
			CertManagerObject{Kind: "Issuer", Name: selfSigned, Spec: map[string]any{"selfSigned": map[string]any{}}},
			CertManagerObject{Kind: "Certificate", Name: caName, Spec: map[string]any{
				"isCA":       true,
				"commonName": caCommonName,
				"subject":    map[string]any{"organizations": []any{appName}},
				"secretName": caName,
				"duration":   hours(cfg.CAValidityHours),
				// The renewed CA keeps its key (and subject): certificates the old CA certificate signed
				// verify against the new one and back, so a CA renewal opens no window while the
				// injector and the Pods' Secret catch up with each other.
				"privateKey":  map[string]any{"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Never"},
				"issuerRef":   issuerRef(IssuerRef{Name: selfSigned}),
				"usages":      []any{"cert sign", "crl sign", "digital signature"},
				"renewBefore": hours(cfg.CAValidityHours / 3),
			}},
			CertManagerObject{Kind: "Issuer", Name: caName, Spec: map[string]any{"ca": map[string]any{"secretName": caName}}},
		)
		ref = IssuerRef{Name: caName}
	}
	dnsNames := ServiceDNSNames(cfg.Name, cfg.Namespace)
	names := make([]any, len(dnsNames))
	for i, n := range dnsNames {
		names[i] = n
	}
	return append(objects, CertManagerObject{Kind: "Certificate", Name: ServingCertificateName(cfg), Spec: map[string]any{
		"secretName":  ServingSecretName(cfg),
		"commonName":  dnsNames[2],
		"dnsNames":    names,
		"duration":    hours(cfg.CertValidityHours),
		"renewBefore": hours(cfg.EarlyRenewalHours),
		"privateKey":  map[string]any{"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
		"usages":      []any{"server auth", "digital signature", "key encipherment"},
		"issuerRef":   issuerRef(ref),
	}})
}

func issuerRef(r IssuerRef) map[string]any {
	r = r.withDefaults()
	return map[string]any{"name": r.Name, "kind": r.Kind, "group": r.Group}
}

// hours is a duration as cert-manager reads it (Go syntax).
func hours(h int) string { return strconv.Itoa(h) + "h" }

// newCertManagerCertificates creates the cert-manager objects. The Secret is cert-manager's: the
// Deployment mounts it by name and waits (Pulumi awaits its ready replicas) until cert-manager has
// issued it; the configuration carries no caBundle, the CA injector fills it.
func newCertManagerCertificates(ctx *pulumi.Context, name string, cfg Config, namespace pulumi.StringOutput, opts ...pulumi.ResourceOption) (*certificates, error) {
	var created []pulumi.Resource
	for _, obj := range CertManagerObjects(cfg) {
		cr, err := newCustomResource(ctx, name+"-"+obj.Name+"-"+lowerKind(obj.Kind), &apiextensions.CustomResourceArgs{
			ApiVersion:  pulumi.String(obj.APIVersion()),
			Kind:        pulumi.String(obj.Kind),
			Metadata:    &pmetav1.ObjectMetaArgs{Name: pulumi.String(obj.Name), Namespace: namespace, Labels: commonLabels(cfg.Name)},
			OtherFields: map[string]any{"spec": obj.Spec},
		}, append(opts, pulumi.DependsOn(created))...)
		if err != nil {
			return nil, err
		}
		created = append(created, cr)
	}
	serving := created[len(created)-1]
	after := func(s string) pulumi.StringOutput {
		return serving.URN().ApplyT(func(pulumi.URN) string { return s }).(pulumi.StringOutput)
	}
	return &certificates{
		secretName:        after(ServingSecretName(cfg)),
		caCertPEM:         pulumi.String("").ToStringOutput(),
		servingCertExpiry: pulumi.String("").ToStringOutput(),
		// The namespace output (not cfg.Namespace) keeps the dependency on the Namespace resource.
		webhookAnnotations: pulumi.StringMap{
			InjectCAFromAnnotation: namespace.ApplyT(func(string) string { return InjectCAFrom(cfg) }).(pulumi.StringOutput),
			// The provider's await: `pulumi up` returns once cert-manager's CA injector has
			// filled caBundle. Without it the up returned with no caBundle, and under Fail every
			// Pod create in a selected namespace was refused until the injector caught up (or
			// for ever, with no injector: then the up fails at its timeout instead, loudly).
			WaitForAnnotation: pulumi.String(WaitForCABundle),
		},
	}, nil
}

// newCustomResource is apiextensions.NewCustomResource asking for the Kubernetes provider version
// the SDK's typed resources ask for. NewCustomResource asks for none, and the engine then made a
// second, unversioned default provider on a first install, which the next update deleted: the
// first preview after an install was not a no-change one (seen end to end in certManager mode).
func newCustomResource(ctx *pulumi.Context, name string, args *apiextensions.CustomResourceArgs, opts ...pulumi.ResourceOption) (*apiextensions.CustomResource, error) {
	return apiextensions.NewCustomResource(ctx, name, args, utilities.PkgResourceDefaultOpts(opts)...)
}

func lowerKind(kind string) string {
	if kind == "Issuer" {
		return "issuer"
	}
	return "certificate"
}
