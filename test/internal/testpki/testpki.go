// Package testpki makes throw-away certificates for the tests, the benchmarks
// and the local cluster: a CA and certificates it signs, with ECDSA P-256 keys
// as the Pulumi stack makes them (never P-224, which Go's TLS refuses), PEM
// encoded (certificates as "CERTIFICATE", leaf keys as PKCS #8 "PRIVATE KEY",
// the form a kubernetes.io/tls Secret holds).
//
// webhook/internal/testpki is the webhook module's own copy for its TLS
// server tests; this module cannot import it.
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
	"time"
)

// CA is a self-signed certificate authority.
type CA struct {
	CertPEM []byte         // the CA certificate: a caBundle, --client-ca-file
	KeyPEM  []byte         // its private key, PKCS #8
	Pool    *x509.CertPool // holds only this CA, for clients
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
}

// NewCA makes a CA valid from an hour ago (some clock skew is fine) for
// validity. The certificates it issues have the same validity period.
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	notBefore := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, key, keyPEM, err := create(tmpl, nil, nil)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: keyPEM, Pool: pool, cert: cert, key: key}, nil
}

// Leaf is a certificate the CA issued, with its key.
type Leaf struct {
	CertPEM, KeyPEM []byte
	Serial          *big.Int
}

// Serving issues a server certificate for hosts: each is an IP address SAN if
// it parses as one, a DNS SAN otherwise.
func (ca *CA) Serving(commonName string, hosts ...string) (*Leaf, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
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

// Client issues a client certificate; the API server takes CN as the user
// name and O as the groups.
func (ca *CA) Client(user string, groups ...string) (*Leaf, error) {
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) issue(tmpl *x509.Certificate) (*Leaf, error) {
	tmpl.NotBefore, tmpl.NotAfter = ca.cert.NotBefore, ca.cert.NotAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, _, keyPEM, err := create(tmpl, ca.cert, ca.key)
	if err != nil {
		return nil, err
	}
	return &Leaf{CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: keyPEM, Serial: tmpl.SerialNumber}, nil
}

// create makes a new P-256 key and the certificate tmpl (given a random serial) for it,
// signed by parent's key; a nil parent makes it self-signed.
func create(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (der []byte, key *ecdsa.PrivateKey, keyPEM []byte, err error) {
	if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	tmpl.SerialNumber = randomSerial()
	if der, err = x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey); err != nil {
		return nil, nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	return der, key, pemBlock("PRIVATE KEY", pkcs8), err
}

// ECKeyPEM makes a bare ECDSA P-256 private key in SEC 1 PEM ("EC PRIVATE
// KEY"), a form kube-apiserver reads as both --service-account-key-file and
// --service-account-signing-key-file.
func ECKeyPEM() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pemBlock("EC PRIVATE KEY", der), nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
