package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certAuthority is a self-signed CA made the way the stack makes it: an
// ECDSA P-256 key (never P-224, which Go's TLS refuses) and a CA certificate
// allowed to sign certificates.
type certAuthority struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newCertAuthority(commonName string) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"ai-webhook"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &certAuthority{cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der)}, nil
}

// servingCert is a leaf certificate with its key, PEM encoded as a
// kubernetes.io/tls Secret holds them.
type servingCert struct {
	certPEM, keyPEM []byte
	serial          *big.Int
}

// issueServing issues a serving certificate for the Service svc in namespace
// ns with the DNS SANs the stack gives it. The API server checks only
// svc.ns.svc; the others are what in-cluster clients may dial.
func (ca *certAuthority) issueServing(svc, ns string) (*servingCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: svc + "." + ns + ".svc"},
		DNSNames:     serviceDNSNames(svc, ns),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &servingCert{
		certPEM: pemBlock("CERTIFICATE", der),
		keyPEM:  pemBlock("PRIVATE KEY", keyDER),
		serial:  tmpl.SerialNumber,
	}, nil
}

func (c *servingCert) tlsCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair(c.certPEM, c.keyPEM)
}

func serviceDNSNames(svc, ns string) []string {
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"}
}

func (ca *certAuthority) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// servedSerial dials addr as the API server does (server name svc.ns.svc,
// verified against ca) and returns the serial of the leaf it was served.
func servedSerial(addr, serverName string, ca *certAuthority) (*big.Int, error) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: serverName, RootCAs: ca.pool()})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
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

// projectedDir writes files the way the kubelet writes a Secret or ConfigMap
// volume: each file is a symlink through ..data to a timestamped directory,
// and an update swaps ..data atomically with a rename, so a reader never sees
// a new certificate with an old key.
type projectedDir struct {
	dir string
}

func (p projectedDir) path(name string) string { return filepath.Join(p.dir, name) }

func (p projectedDir) write(files map[string][]byte) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return err
	}
	ts, err := os.MkdirTemp(p.dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(ts, name), data, 0o600); err != nil {
			return err
		}
	}
	dataLink := p.path("..data")
	oldTarget, _ := os.Readlink(dataLink)
	tmpLink := p.path("..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(ts), tmpLink); err != nil {
		return err
	}
	if err := os.Rename(tmpLink, dataLink); err != nil {
		return fmt.Errorf("swap ..data: %w", err)
	}
	for name := range files {
		link := p.path(name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return err
		}
	}
	if oldTarget != "" {
		return os.RemoveAll(p.path(oldTarget))
	}
	return nil
}

func tlsServerConfig(pair tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}
