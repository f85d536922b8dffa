package controlplane

import (
	"crypto/tls"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ai-webhook/ai-webhook/infra/webhookstack"
	"github.com/ai-webhook/ai-webhook/webhook/testpki"
)

// issueServing issues a serving certificate for the Service svc in namespace
// ns with the DNS SANs the stack gives it. The API server checks only
// svc.ns.svc; the others are what in-cluster clients may dial.
func issueServing(ca *testpki.CA, svc, ns string) (*testpki.Leaf, error) {
	return ca.Serving(svc+"."+ns+".svc", webhookstack.ServiceDNSNames(svc, ns)...)
}

// servedSerial dials addr as the API server does (server name svc.ns.svc,
// verified against ca) and returns the serial of the leaf it was served.
func servedSerial(addr, serverName string, ca *testpki.CA) (*big.Int, error) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: serverName, RootCAs: ca.Pool})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
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
