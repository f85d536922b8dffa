package localcluster

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"time"

	"github.com/ai-webhook/ai-webhook/test/internal/testpki"
)

// pki holds the files of the cluster's own credentials: a CA, the API
// server's serving certificate, an admin client certificate
// (system:masters) and the service-account signing key.
type pki struct {
	dir                   string
	caCert, caKey         string
	serverCert, serverKey string
	adminCert, adminKey   string
	saKey, saPub          string

	caPEM, adminCertPEM, adminKeyPEM []byte
}

func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{
		dir:    dir,
		caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"),
		serverCert: filepath.Join(dir, "apiserver.crt"), serverKey: filepath.Join(dir, "apiserver.key"),
		adminCert: filepath.Join(dir, "admin.crt"), adminKey: filepath.Join(dir, "admin.key"),
		saKey: filepath.Join(dir, "sa.key"), saPub: filepath.Join(dir, "sa.pub"),
	}
	ca, err := testpki.NewCA("localcluster-ca", 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	p.caPEM = ca.CertPEM
	if err := writeFiles(map[string][]byte{p.caCert: ca.CertPEM, p.caKey: ca.KeyPEM}); err != nil {
		return nil, err
	}
	server, err := ca.Serving("kube-apiserver", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", APIServerIP, "127.0.0.1", kubernetesServiceIP)
	if err != nil {
		return nil, err
	}
	admin, err := ca.Client("localcluster-admin", "system:masters")
	if err != nil {
		return nil, err
	}
	p.adminCertPEM, p.adminKeyPEM = admin.CertPEM, admin.KeyPEM
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	return p, writeFiles(map[string][]byte{
		p.serverCert: server.CertPEM, p.serverKey: server.KeyPEM,
		p.adminCert: p.adminCertPEM, p.adminKey: p.adminKeyPEM,
		p.saKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: saDER}),
		p.saPub: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
	})
}

func writeFiles(files map[string][]byte) error {
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
