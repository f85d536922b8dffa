package webhookstack

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	pcorev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	pmetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi-tls/sdk/v5/go/tls"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Certificate modes (config key certificates.mode): who issues the serving certificate and
// fills the webhook configuration's caBundle.
const (
	// CertModePulumi: pulumi-tls issues a CA and the serving certificate; a `pulumi up` inside
	// earlyRenewalHours renews it (the default).
	CertModePulumi = "pulumi"
	// CertModeCertManager: a cert-manager Certificate issues it and renews it in place;
	// cert-manager's CA injector fills caBundle.
	CertModeCertManager = "certManager"
	// CertModeSecret: the user brings the Secret and the CA bundle.
	CertModeSecret = "secret"
)

// Certificates (config key certificates) chooses how the serving certificate is issued.
type Certificates struct {
	Mode string
	// IssuerRef (certManager) names an Issuer or ClusterIssuer of the user's. Without it the
	// stack creates a self-signed Issuer, a CA Certificate and a CA Issuer in the namespace.
	IssuerRef IssuerRef
	// SecretName (secret) is a kubernetes.io/tls Secret in the webhook's namespace (tls.crt,
	// tls.key) that the user keeps current.
	SecretName string
	// CABundle (secret) is the PEM of the CA certificate(s) the Secret's certificate chains to.
	CABundle string
}

// IssuerRef is a cert-manager issuer reference.
type IssuerRef struct {
	Name  string
	Kind  string // Issuer (default) or ClusterIssuer
	Group string // cert-manager.io (default)
}

type certificatesValue struct {
	Mode      *Text `json:"mode"`
	IssuerRef *struct {
		Name  Text `json:"name"`
		Kind  Text `json:"kind"`
		Group Text `json:"group"`
	} `json:"issuerRef"`
	SecretName *Text `json:"secretName"`
	CABundle   *Text `json:"caBundle"`
}

func (v certificatesValue) over(d Certificates) Certificates {
	if v.Mode != nil {
		d.Mode = string(*v.Mode)
	}
	if v.IssuerRef != nil {
		d.IssuerRef = IssuerRef{Name: string(v.IssuerRef.Name), Kind: string(v.IssuerRef.Kind), Group: string(v.IssuerRef.Group)}
	}
	if v.SecretName != nil {
		d.SecretName = string(*v.SecretName)
	}
	if v.CABundle != nil {
		d.CABundle = string(*v.CABundle)
	}
	return d
}

// validate returns every problem of the certificates key, each naming its path.
func (c Certificates) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, keyError("certificates."+key, format, args...))
	}
	only := func(key string, set bool, mode string) {
		if set && c.Mode != mode {
			bad(key, "is used only with mode %q, got mode %q", mode, c.Mode)
		}
	}
	switch c.Mode {
	case CertModePulumi, CertModeCertManager, CertModeSecret:
	default:
		bad("mode", "must be %q, %q or %q, got %q", CertModePulumi, CertModeCertManager, CertModeSecret, c.Mode)
		return errs
	}
	only("issuerRef", c.IssuerRef != (IssuerRef{}), CertModeCertManager)
	only("secretName", c.SecretName != "", CertModeSecret)
	only("caBundle", c.CABundle != "", CertModeSecret)

	if c.Mode == CertModeCertManager && c.IssuerRef != (IssuerRef{}) {
		ref := c.IssuerRef.withDefaults()
		if msgs := validation.IsDNS1123Subdomain(ref.Name); len(msgs) > 0 {
			bad("issuerRef.name", "must name an Issuer or ClusterIssuer, got %q: %s", ref.Name, strings.Join(msgs, "; "))
		}
		if ref.Kind != "Issuer" && ref.Kind != "ClusterIssuer" {
			bad("issuerRef.kind", `must be "Issuer" or "ClusterIssuer", got %q`, ref.Kind)
		}
		if msgs := validation.IsDNS1123Subdomain(ref.Group); len(msgs) > 0 {
			bad("issuerRef.group", "must be an API group such as cert-manager.io, got %q", ref.Group)
		}
	}
	if c.Mode == CertModeSecret {
		if msgs := validation.IsDNS1123Subdomain(c.SecretName); len(msgs) > 0 {
			bad("secretName", "must name a kubernetes.io/tls Secret in the webhook's namespace, got %q", c.SecretName)
		}
		if err := checkCABundle(c.CABundle); err != nil {
			bad("caBundle", "must be the PEM of the CA certificate(s) behind the Secret's certificate: %v", err)
		}
	}
	return errs
}

func (r IssuerRef) withDefaults() IssuerRef {
	if r.Kind == "" {
		r.Kind = "Issuer"
	}
	if r.Group == "" {
		r.Group = certManagerGroup
	}
	return r
}

// checkCABundle wants one or more PEM CERTIFICATE blocks, each a CA certificate, and nothing else.
func checkCABundle(bundle string) error {
	rest := []byte(bundle)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("block %d is a %s, not a CERTIFICATE", n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("certificate %d: %v", n, err)
		}
		if !cert.IsCA {
			return fmt.Errorf("certificate %d (%s) is not a CA certificate", n, cert.Subject)
		}
	}
	switch {
	case n == 0:
		return fmt.Errorf("no PEM certificate found")
	case strings.TrimSpace(string(rest)) != "":
		return fmt.Errorf("text after the last certificate")
	}
	return nil
}

// Key usages, in the snake_case spelling pulumi-tls v5 accepts (some SDK comments show camelCase,
// which the provider refuses).
const (
	useCertSigning      = "cert_signing"
	useCRLSigning       = "crl_signing"
	useDigitalSignature = "digital_signature"
	useKeyEncipherment  = "key_encipherment"
	useServerAuth       = "server_auth"
)

// caCommonName is the CA's subject common name. It names no namespace: see newPulumiCertificates.
const caCommonName = appName + " CA"

// certificates is what the rest of the stack needs of the chosen mode.
type certificates struct {
	// secretName is the kubernetes.io/tls Secret the Pods mount. Its resource (when the stack
	// makes it) is behind the output, so the Deployment depends on it.
	secretName pulumi.StringOutput
	// caCertPEM is the CA the serving certificate chains to ("" in certManager mode: the CA
	// injector knows it, the program does not).
	caCertPEM pulumi.StringOutput
	// caBundle is the webhook's caBundle (base64), nil when cert-manager's CA injector fills it.
	caBundle pulumi.StringPtrInput
	// webhookAnnotations go on the MutatingWebhookConfiguration (cert-manager.io/inject-ca-from).
	webhookAnnotations pulumi.StringMap
	// servingCertExpiry is the serving certificate's notAfter, RFC 3339 ("" when not the stack's).
	servingCertExpiry pulumi.StringOutput
}

// ServiceDNSNames are the names the API server may check the serving certificate against; it
// dials <service>.<namespace>.svc.
func ServiceDNSNames(service, namespace string) []string {
	return []string{
		service,
		service + "." + namespace,
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

// newCertificates sets up the serving certificate of the configured mode. prev is what the last
// update left (trust.go): the caBundle keeps the CA it trusted until the Pods serve the new one.
func newCertificates(ctx *pulumi.Context, name string, cfg Config, namespace pulumi.StringOutput, prev previous, opts ...pulumi.ResourceOption) (*certificates, error) {
	var (
		certs *certificates
		err   error
	)
	switch cfg.Certificates.Mode {
	case CertModeCertManager:
		return newCertManagerCertificates(ctx, name, cfg, namespace, opts...)
	case CertModeSecret:
		certs = &certificates{
			secretName:        pulumi.String(cfg.Certificates.SecretName).ToStringOutput(),
			caCertPEM:         pulumi.String(cfg.Certificates.CABundle).ToStringOutput(),
			servingCertExpiry: pulumi.String("").ToStringOutput(),
		}
	default:
		if certs, err = newPulumiCertificates(ctx, name, cfg, namespace, opts...); err != nil {
			return nil, err
		}
		warnRenewal(ctx, cfg, prev)
	}
	certs.caBundle = base64Of(trustedBundle(certs.caCertPEM, prev.caCertPEM))
	return certs, nil
}

// newECDSAKey makes a P-256 key: pulumi-tls defaults ECDSA to P-224, which Go's TLS (and so the
// API server) refuses.
func newECDSAKey(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) (*tls.PrivateKey, error) {
	return tls.NewPrivateKey(ctx, name, &tls.PrivateKeyArgs{
		Algorithm:  pulumi.String("ECDSA"),
		EcdsaCurve: pulumi.String("P256"),
	}, opts...)
}

// newPulumiCertificates makes a self-signed CA, a serving certificate it signs for the webhook
// Service, and the Secret the Pods mount. The serving certificate is reissued by the first
// `pulumi up` within EarlyRenewalHours of its expiry.
//
// One roll mechanism: the Secret has a generated name. pulumi-kubernetes replaces it when its
// data changes (a renewed certificate); with a generated name the replacement is created before
// the old one is deleted, and the new name in the pod template is what rolls the Deployment, so
// running pods never lose their mounted files. `pulumi up` ends only once every Pod serves the
// new certificate, and a server that refuses it stops the rollout while the old Pods keep serving.
func newPulumiCertificates(ctx *pulumi.Context, name string, cfg Config, namespace pulumi.StringOutput, opts ...pulumi.ResourceOption) (*certificates, error) {
	caKey, err := newECDSAKey(ctx, name+"-ca", opts...)
	if err != nil {
		return nil, err
	}
	// The CA's inputs must not follow the namespace: a move should not replace the CA. (A CA
	// that is replaced all the same is trusted beside the old one until the Pods serve it:
	// trustedBundle.) The serving certificate carries the namespaced names.
	ca, err := tls.NewSelfSignedCert(ctx, name+"-ca", &tls.SelfSignedCertArgs{
		PrivateKeyPem:   caKey.PrivateKeyPem,
		IsCaCertificate: pulumi.Bool(true),
		SetSubjectKeyId: pulumi.Bool(true),
		Subject: &tls.SelfSignedCertSubjectArgs{
			CommonName:   pulumi.String(caCommonName),
			Organization: pulumi.String(appName),
		},
		ValidityPeriodHours: pulumi.Int(cfg.CAValidityHours),
		AllowedUses:         pulumi.ToStringArray([]string{useCertSigning, useCRLSigning, useDigitalSignature}),
	}, opts...)
	if err != nil {
		return nil, err
	}

	servingKey, err := newECDSAKey(ctx, name+"-serving", opts...)
	if err != nil {
		return nil, err
	}
	dnsNames := ServiceDNSNames(cfg.Name, cfg.Namespace)
	csr, err := tls.NewCertRequest(ctx, name+"-serving", &tls.CertRequestArgs{
		PrivateKeyPem: servingKey.PrivateKeyPem,
		DnsNames:      pulumi.ToStringArray(dnsNames),
		Subject: &tls.CertRequestSubjectArgs{
			CommonName:   pulumi.String(dnsNames[2]),
			Organization: pulumi.String(appName),
		},
	}, opts...)
	if err != nil {
		return nil, err
	}
	serving, err := tls.NewLocallySignedCert(ctx, name+"-serving", &tls.LocallySignedCertArgs{
		CertRequestPem:      csr.CertRequestPem,
		CaPrivateKeyPem:     caKey.PrivateKeyPem,
		CaCertPem:           ca.CertPem,
		ValidityPeriodHours: pulumi.Int(cfg.CertValidityHours),
		EarlyRenewalHours:   pulumi.Int(cfg.EarlyRenewalHours),
		AllowedUses:         pulumi.ToStringArray([]string{useServerAuth, useDigitalSignature, useKeyEncipherment}),
	}, opts...)
	if err != nil {
		return nil, err
	}

	secret, err := pcorev1.NewSecret(ctx, name+"-tls", &pcorev1.SecretArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Namespace: namespace, Labels: commonLabels(cfg.Name)},
		Type:     pulumi.String(string(corev1.SecretTypeTLS)),
		// data, not stringData: it is what the API server stores, so a refresh or preview finds
		// nothing to change.
		Data: pulumi.StringMap{
			corev1.TLSCertKey:       base64Of(serving.CertPem),
			corev1.TLSPrivateKeyKey: base64Of(servingKey.PrivateKeyPem),
			tlsCACertKey:            base64Of(ca.CertPem),
		},
	}, opts...)
	if err != nil {
		return nil, err
	}
	return &certificates{
		secretName:        secret.Metadata.Name().Elem(),
		caCertPEM:         ca.CertPem,
		servingCertExpiry: serving.ValidityEndTime,
	}, nil
}
