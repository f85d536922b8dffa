package tlsprovider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // identifiers and RFC 5280 key ids, as upstream
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"sort"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"golang.org/x/crypto/ssh"
)

// createFunc makes a resource from its checked, fully known inputs and returns
// its id and output properties (inputs are copied into the state by the caller).
type createFunc func(now time.Time, in inputs) (string, resource.PropertyMap, error)

// allowedUses maps upstream's snake_case allowed_uses values to x509 usages.
var (
	keyUsages = map[string]x509.KeyUsage{
		"digital_signature":  x509.KeyUsageDigitalSignature,
		"content_commitment": x509.KeyUsageContentCommitment,
		"key_encipherment":   x509.KeyUsageKeyEncipherment,
		"data_encipherment":  x509.KeyUsageDataEncipherment,
		"key_agreement":      x509.KeyUsageKeyAgreement,
		"cert_signing":       x509.KeyUsageCertSign,
		"crl_signing":        x509.KeyUsageCRLSign,
		"encipher_only":      x509.KeyUsageEncipherOnly,
		"decipher_only":      x509.KeyUsageDecipherOnly,
	}
	extKeyUsages = map[string]x509.ExtKeyUsage{
		"any_extended":                      x509.ExtKeyUsageAny,
		"server_auth":                       x509.ExtKeyUsageServerAuth,
		"client_auth":                       x509.ExtKeyUsageClientAuth,
		"code_signing":                      x509.ExtKeyUsageCodeSigning,
		"email_protection":                  x509.ExtKeyUsageEmailProtection,
		"ipsec_end_system":                  x509.ExtKeyUsageIPSECEndSystem,
		"ipsec_tunnel":                      x509.ExtKeyUsageIPSECTunnel,
		"ipsec_user":                        x509.ExtKeyUsageIPSECUser,
		"timestamping":                      x509.ExtKeyUsageTimeStamping,
		"ocsp_signing":                      x509.ExtKeyUsageOCSPSigning,
		"microsoft_server_gated_crypto":     x509.ExtKeyUsageMicrosoftServerGatedCrypto,
		"netscape_server_gated_crypto":      x509.ExtKeyUsageNetscapeServerGatedCrypto,
		"microsoft_commercial_code_signing": x509.ExtKeyUsageMicrosoftCommercialCodeSigning,
		"microsoft_kernel_code_signing":     x509.ExtKeyUsageMicrosoftKernelCodeSigning,
	}
)

func allowedUseNames() []string {
	var names []string
	for n := range keyUsages {
		names = append(names, n)
	}
	for n := range extKeyUsages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var curves = map[string]elliptic.Curve{
	"P224": elliptic.P224(), "P256": elliptic.P256(), "P384": elliptic.P384(), "P521": elliptic.P521(),
}

func createPrivateKey(_ time.Time, in inputs) (string, resource.PropertyMap, error) {
	var (
		key     crypto.Signer
		keyPem  *pem.Block
		err     error
		algName = in.str("algorithm")
	)
	switch algName {
	case "RSA":
		var k *rsa.PrivateKey
		if k, err = rsa.GenerateKey(rand.Reader, in.integer("rsaBits")); err == nil {
			key, keyPem = k, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
	case "ECDSA":
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.GenerateKey(curves[in.str("ecdsaCurve")], rand.Reader); err == nil {
			var der []byte
			if der, err = x509.MarshalECPrivateKey(k); err == nil {
				key, keyPem = k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
			}
		}
	case "ED25519":
		var k ed25519.PrivateKey
		if _, k, err = ed25519.GenerateKey(rand.Reader); err == nil {
			var der []byte
			if der, err = x509.MarshalPKCS8PrivateKey(k); err == nil {
				key, keyPem = k, &pem.Block{Type: "PRIVATE KEY", Bytes: der}
			}
		}
	default:
		err = fmt.Errorf("unsupported algorithm %q", algName)
	}
	if err != nil {
		return "", nil, fmt.Errorf("generating %s key: %w", algName, err)
	}

	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", nil, err
	}
	pubDer, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", nil, err
	}
	pubPem := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDer}))

	// OpenSSH has no P-224; upstream leaves the OpenSSH fields empty then.
	var privSSH, pubSSH, md5, sha256 string
	if sshPub, err := ssh.NewPublicKey(key.Public()); err == nil {
		pubSSH = string(ssh.MarshalAuthorizedKey(sshPub))
		md5 = ssh.FingerprintLegacyMD5(sshPub)
		sha256 = ssh.FingerprintSHA256(sshPub)
		if block, err := ssh.MarshalPrivateKey(key, ""); err == nil {
			privSSH = string(pem.EncodeToMemory(block))
		}
	}

	outs := resource.PropertyMap{
		"privateKeyPem":              resource.NewStringProperty(string(pem.EncodeToMemory(keyPem))),
		"privateKeyPemPkcs8":         resource.NewStringProperty(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))),
		"privateKeyOpenssh":          resource.NewStringProperty(privSSH),
		"publicKeyPem":               resource.NewStringProperty(pubPem),
		"publicKeyOpenssh":           resource.NewStringProperty(pubSSH),
		"publicKeyFingerprintMd5":    resource.NewStringProperty(md5),
		"publicKeyFingerprintSha256": resource.NewStringProperty(sha256),
	}
	return hashID(pubPem), outs, nil
}

func createCertRequest(_ time.Time, in inputs) (string, resource.PropertyMap, error) {
	key, alg, err := parsePrivateKey(in.str("privateKeyPem"))
	if err != nil {
		return "", nil, fmt.Errorf("privateKeyPem: %w", err)
	}
	tmpl := &x509.CertificateRequest{Subject: in.subject()}
	if tmpl.DNSNames, tmpl.IPAddresses, tmpl.URIs, err = in.sans(); err != nil {
		return "", nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return "", nil, fmt.Errorf("creating certificate request: %w", err)
	}
	csrPem := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	return hashID(csrPem), resource.PropertyMap{
		"certRequestPem": resource.NewStringProperty(csrPem),
		"keyAlgorithm":   resource.NewStringProperty(alg),
	}, nil
}

func createSelfSignedCert(now time.Time, in inputs) (string, resource.PropertyMap, error) {
	key, alg, err := parsePrivateKey(in.str("privateKeyPem"))
	if err != nil {
		return "", nil, fmt.Errorf("privateKeyPem: %w", err)
	}
	tmpl, err := certTemplate(now, in)
	if err != nil {
		return "", nil, err
	}
	tmpl.Subject = in.subject()
	if tmpl.DNSNames, tmpl.IPAddresses, tmpl.URIs, err = in.sans(); err != nil {
		return "", nil, err
	}
	if in.boolean("setAuthorityKeyId") {
		if tmpl.AuthorityKeyId, err = keyID(key.Public()); err != nil {
			return "", nil, err
		}
	}
	outs, err := signCert(now, in, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return "", nil, err
	}
	outs["keyAlgorithm"] = resource.NewStringProperty(alg)
	return tmpl.SerialNumber.String(), outs, nil
}

func createLocallySignedCert(now time.Time, in inputs) (string, resource.PropertyMap, error) {
	csr, err := parseCertRequest(in.str("certRequestPem"))
	if err != nil {
		return "", nil, fmt.Errorf("certRequestPem: %w", err)
	}
	ca, err := parseCert(in.str("caCertPem"))
	if err != nil {
		return "", nil, fmt.Errorf("caCertPem: %w", err)
	}
	caKey, caAlg, err := parsePrivateKey(in.str("caPrivateKeyPem"))
	if err != nil {
		return "", nil, fmt.Errorf("caPrivateKeyPem: %w", err)
	}
	tmpl, err := certTemplate(now, in)
	if err != nil {
		return "", nil, err
	}
	tmpl.Subject = csr.Subject
	tmpl.DNSNames, tmpl.IPAddresses, tmpl.URIs = csr.DNSNames, csr.IPAddresses, csr.URIs
	outs, err := signCert(now, in, tmpl, ca, csr.PublicKey, caKey)
	if err != nil {
		return "", nil, err
	}
	outs["caKeyAlgorithm"] = resource.NewStringProperty(caAlg)
	return tmpl.SerialNumber.String(), outs, nil
}

// certTemplate fills what self-signed and locally signed certificates share:
// serial, validity, usages, CA flag and subject key id.
func certTemplate(now time.Time, in inputs) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now,
		NotAfter:              now.Add(time.Duration(in.integer("validityPeriodHours")) * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  in.boolean("isCaCertificate"),
	}
	for _, use := range in.strs("allowedUses") {
		if ku, ok := keyUsages[use]; ok {
			tmpl.KeyUsage |= ku
		} else if eku, ok := extKeyUsages[use]; ok {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, eku)
		}
	}
	return tmpl, nil
}

func signCert(now time.Time, in inputs, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (resource.PropertyMap, error) {
	if in.boolean("setSubjectKeyId") {
		id, err := keyID(pub)
		if err != nil {
			return nil, err
		}
		tmpl.SubjectKeyId = id
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("creating certificate: %w", err)
	}
	end := tmpl.NotAfter.UTC().Format(time.RFC3339)
	return resource.PropertyMap{
		"certPem":           resource.NewStringProperty(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		"validityStartTime": resource.NewStringProperty(tmpl.NotBefore.UTC().Format(time.RFC3339)),
		"validityEndTime":   resource.NewStringProperty(end),
		"readyForRenewal":   resource.NewBoolProperty(readyForRenewal(now, end, in.integer("earlyRenewalHours"))),
	}, nil
}

// readyForRenewal reports whether now is within earlyRenewalHours of the end of
// validity (or past it), upstream's rule.
func readyForRenewal(now time.Time, validityEnd string, earlyRenewalHours int) bool {
	end, err := time.Parse(time.RFC3339, validityEnd)
	if err != nil {
		return false
	}
	return !now.Before(end.Add(-time.Duration(earlyRenewalHours) * time.Hour))
}

func parsePrivateKey(pemStr string) (crypto.Signer, string, error) {
	block, _ := pem.Decode([]byte(pemStr))
	if block == nil {
		return nil, "", errors.New("no PEM block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, "", fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, "", err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, "RSA", nil
	case *ecdsa.PrivateKey:
		return k, "ECDSA", nil
	case ed25519.PrivateKey:
		return k, "ED25519", nil
	}
	return nil, "", fmt.Errorf("unsupported key type %T", key)
}

func parseCert(pemStr string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(pemStr))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseCertRequest(pemStr string) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode([]byte(pemStr))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("no CERTIFICATE REQUEST PEM block found")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	return csr, csr.CheckSignature()
}

// keyID is the RFC 5280 (method 1) key identifier: SHA-1 of the subject public
// key bits.
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.Bytes) //nolint:gosec // RFC 5280 key identifier
	return sum[:], nil
}

func hashID(s string) string {
	sum := sha1.Sum([]byte(s)) //nolint:gosec // an identifier, as upstream
	return hex.EncodeToString(sum[:])
}

// emailAddressOID is the PKCS#9 emailAddress attribute upstream puts in the subject.
var emailAddressOID = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

func (in inputs) subject() pkix.Name {
	s := in.object("subject")
	var name pkix.Name
	one := func(k string) []string {
		if v := s.str(k); v != "" {
			return []string{v}
		}
		return nil
	}
	name.CommonName = s.str("commonName")
	name.SerialNumber = s.str("serialNumber")
	name.Country = one("country")
	name.Locality = one("locality")
	name.Organization = one("organization")
	name.OrganizationalUnit = one("organizationalUnit")
	name.PostalCode = one("postalCode")
	name.Province = one("province")
	name.StreetAddress = s.strs("streetAddresses")
	if e := s.str("emailAddress"); e != "" {
		name.ExtraNames = append(name.ExtraNames, pkix.AttributeTypeAndValue{Type: emailAddressOID, Value: e})
	}
	return name
}

func (in inputs) sans() (dns []string, ips []net.IP, uris []*url.URL, err error) {
	dns = in.strs("dnsNames")
	for _, s := range in.strs("ipAddresses") {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, nil, nil, fmt.Errorf("ipAddresses: %q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	for _, s := range in.strs("uris") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("uris: %w", err)
		}
		uris = append(uris, u)
	}
	return dns, ips, uris, nil
}
