// Package testpki makes throw-away certificates for the webhook's TLS tests and
// for the test module (control-plane tests, benchmarks, the local cluster): a
// CA and certificates it signs, with ECDSA P-256 keys as the Pulumi stack makes
// them (never P-224, which Go's TLS refuses), PEM encoded (certificates as
// "CERTIFICATE", leaf keys as PKCS #8 "PRIVATE KEY", the form a
// kubernetes.io/tls Secret holds). It sits outside internal/ so that both
// modules share it; only tests and test code import it, never the ai-webhook
// binary.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a self-signed certificate authority.
type CA struct {
	CertPEM []byte         // the CA certificate: a caBundle, --client-ca-file
	Pool    *x509.CertPool // holds only this CA, for clients
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
}

// NewCA makes a CA valid from an hour ago (some clock skew is fine) for
// validity. The certificates it issues have the same validity period unless
// told otherwise (ServingValid).
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	notBefore := time.Now().Add(-time.Hour)
	ca := &CA{cert: &x509.Certificate{
		Subject:   pkix.Name{CommonName: commonName},
		NotBefore: notBefore, NotAfter: notBefore.Add(validity),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}}
	self, err := ca.issue(ca.cert) // self-signed: ca.key is nil until then
	if err != nil {
		return nil, err
	}
	ca.CertPEM, ca.key = self.CertPEM, self.key
	if ca.cert, err = x509.ParseCertificate(self.der); err != nil {
		return nil, err
	}
	ca.Pool = x509.NewCertPool()
	ca.Pool.AddCert(ca.cert)
	return ca, nil
}

// Leaf is a certificate the CA issued, with its key.
type Leaf struct {
	CertPEM, KeyPEM []byte
	Serial          *big.Int
	der             []byte
	key             *ecdsa.PrivateKey
}

// Serving issues a server certificate for hosts, valid as the CA is: each
// host is an IP address SAN if it parses as one, a DNS SAN otherwise.
func (ca *CA) Serving(commonName string, hosts ...string) (*Leaf, error) {
	return ca.ServingValid(time.Time{}, time.Time{}, commonName, hosts...)
}

// ServingValid is Serving with a validity period of its own (an expired
// certificate, say); zero times take the CA's.
func (ca *CA) ServingValid(notBefore, notAfter time.Time, commonName string, hosts ...string) (*Leaf, error) {
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: commonName},
		NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl)
}

// ServingFiles issues a serving certificate (Serving) and writes it to dir, made if
// missing, as tls.crt and tls.key: the keys of a kubernetes.io/tls Secret, and the files
// ai-webhook serve reads. It returns their paths.
func (ca *CA) ServingFiles(dir, commonName string, hosts ...string) (cert, key string, err error) {
	leaf, err := ca.Serving(commonName, hosts...)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	cert, key = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(cert, leaf.CertPEM, 0o600); err != nil {
		return "", "", err
	}
	return cert, key, os.WriteFile(key, leaf.KeyPEM, 0o600)
}

// Client issues a client certificate; the API server takes CN as the user
// name and O as the groups.
func (ca *CA) Client(user string, groups ...string) (*Leaf, error) {
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// issue makes a new P-256 key and the certificate tmpl (given a random serial and, for a
// leaf, key usages and, unless it has its own, the CA's validity) for it, signed by the CA,
// or by itself before the CA has a key.
func (ca *CA) issue(tmpl *x509.Certificate) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	parent, parentKey := ca.cert, ca.key
	if parentKey == nil {
		parent, parentKey = tmpl, key
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		if tmpl.NotAfter.IsZero() {
			tmpl.NotBefore, tmpl.NotAfter = ca.cert.NotBefore, ca.cert.NotAfter
		}
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	return &Leaf{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		Serial: tmpl.SerialNumber, der: der, key: key}, err
}
