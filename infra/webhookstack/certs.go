package webhookstack

import (
	"github.com/pulumi/pulumi-tls/sdk/v5/go/tls"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Key usages, in the snake_case spelling pulumi-tls v5 accepts (some SDK comments show camelCase,
// which the provider refuses).
const (
	useCertSigning      = "cert_signing"
	useCRLSigning       = "crl_signing"
	useDigitalSignature = "digital_signature"
	useKeyEncipherment  = "key_encipherment"
	useServerAuth       = "server_auth"
)

// caCommonName is the CA's subject common name. It names no namespace: see newCertificates.
const caCommonName = appName + " CA"

// certificates are the pulumi-tls outputs the rest of the stack uses. servingKeyPEM is a secret.
type certificates struct {
	caCertPEM         pulumi.StringOutput
	servingCertPEM    pulumi.StringOutput
	servingKeyPEM     pulumi.StringOutput
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

// newECDSAKey makes a P-256 key: pulumi-tls defaults ECDSA to P-224, which Go's TLS (and so the
// API server) refuses.
func newECDSAKey(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) (*tls.PrivateKey, error) {
	return tls.NewPrivateKey(ctx, name, &tls.PrivateKeyArgs{
		Algorithm:  pulumi.String("ECDSA"),
		EcdsaCurve: pulumi.String("P256"),
	}, opts...)
}

// newCertificates makes a self-signed CA and a serving certificate it signs for the webhook
// Service. The serving certificate is reissued by the first `pulumi up` within EarlyRenewalHours
// of its expiry; the new Secret it goes into then rolls the pods (see newWorkload).
func newCertificates(ctx *pulumi.Context, name string, cfg Config, opts ...pulumi.ResourceOption) (*certificates, error) {
	caKey, err := newECDSAKey(ctx, name+"-ca", opts...)
	if err != nil {
		return nil, err
	}
	// The CA's inputs must not follow the namespace: changing them replaces the CA, and a new CA
	// reaches the serving Secret before the webhook's caBundle, which is updated only after the
	// Deployment has rolled; under failurePolicy Fail, Pods are refused meanwhile. The serving
	// certificate carries the namespaced names.
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
	dnsNames := ServiceDNSNames(appName, cfg.Namespace)
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

	return &certificates{
		caCertPEM:         ca.CertPem,
		servingCertPEM:    serving.CertPem,
		servingKeyPEM:     servingKey.PrivateKeyPem,
		servingCertExpiry: serving.ValidityEndTime,
	}, nil
}
