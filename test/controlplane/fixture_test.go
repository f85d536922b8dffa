package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
	"github.com/ai-webhook/ai-webhook/webhook/testpki"
)

// Names and addresses of the cluster the tests build. Everything in
// 10.250.0.0/16 is local inside the test's network namespace.
const (
	domain           = profile.DefaultDomain
	gpuProfile       = "gpu-training" // in testdata/profiles.yaml
	webhookNamespace = "ai-webhook"
	webhookService   = "ai-webhook"
	webhookName      = domain                // the webhook's name in the configuration, as the stack names it
	configName       = "ai-mutating-webhook" // the stack's MutatingWebhookConfiguration

	apiServerAddress = "10.250.0.1"  // --advertise-address
	webhookAddress   = "10.250.0.10" // the ai-webhook process, as its EndpointSlice says
	webhookPort      = 8443
)

// The webhook's keys, derived as the product derives them.
var (
	profileKey  = profile.KeysFor(domain).Profile
	injectKey   = profile.KeysFor(domain).Inject
	injectedKey = profile.KeysFor(domain).Injected
)

// fx is the control plane and webhook shared by all tests of the package,
// started by the first test that calls requireControlPlane and stopped by
// TestMain, inside the private network namespace.
var (
	fx      *fixture
	fxOnce  sync.Once
	fxError error
)

// stopAtEnd stops proc when the test ends and, if the test failed, logs the last lines of the
// log of what it runs.
func stopAtEnd(t *testing.T, proc *cluster.Process, what string) {
	t.Cleanup(func() {
		proc.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("last lines of %s's log:\n%s", what, cluster.Tail(proc.Log, 20))
		}
	})
}

// requireControlPlane starts the shared etcd, kube-apiserver and webhook on
// first use and fails the test when they could not start. Starting them while
// tests run (not in TestMain) lets `go test` record what they read.
func requireControlPlane(t *testing.T) {
	t.Helper()
	fxOnce.Do(func() {
		fx, fxError = startFixture(os.Getenv(envRepoRoot), os.Getenv(envWebhookBin), os.Getenv(envWorkDir))
	})
	if fxError != nil {
		t.Fatalf("start the control plane and the webhook: %v", fxError)
	}
}

type fixture struct {
	cluster *cluster.Cluster
	client  kubernetes.Interface
	ca      *testpki.CA
	tlsDir  projectedDir // the webhook's Secret volume: tls.crt, tls.key
}

func startFixture(root, webhookBin, workDir string) (*fixture, error) {
	if root == "" || webhookBin == "" || workDir == "" {
		return nil, errors.New("run through TestMain: the outer process sets up the namespace")
	}
	f := &fixture{}
	if err := trackInputs(root); err != nil {
		return f, err
	}
	ca, err := testpki.NewCA("ai-webhook-ca", 24*time.Hour)
	if err != nil {
		return f, err
	}
	f.ca = ca
	serving, err := issueServing(ca, webhookService, webhookNamespace)
	if err != nil {
		return f, err
	}
	f.tlsDir = projectedDir{dir: filepath.Join(workDir, "tls")}
	if err := f.tlsDir.write(map[string][]byte{"tls.crt": serving.CertPEM, "tls.key": serving.KeyPEM}); err != nil {
		return f, err
	}
	profiles, err := os.ReadFile(filepath.Join("testdata", "profiles.yaml"))
	if err != nil {
		return f, err
	}
	profilesDir := projectedDir{dir: filepath.Join(workDir, "profiles")}
	if err := profilesDir.write(map[string][]byte{"profiles.yaml": profiles}); err != nil {
		return f, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// etcd syncs to disk, as in a real cluster; no controller-manager (the
	// tests make the Service's EndpointSlice themselves) and so no default
	// ServiceAccounts, which the ServiceAccount admission plugin would require.
	f.cluster, err = cluster.Start(ctx, cluster.Options{
		BinDir: filepath.Join(root, "bin"), StateDir: filepath.Join(workDir, "cluster"),
		Address: cluster.PrivateAddress, EtcdFsync: true,
		APIServerFlags: []string{"--disable-admission-plugins=ServiceAccount"},
	})
	if err != nil {
		return f, err
	}
	f.client = f.cluster.Client
	// `ai-webhook serve` as the Deployment runs it, with files laid out like
	// its Secret and ConfigMap volumes.
	webhook, err := f.cluster.Run(webhookBin, "serve",
		"--listen=0.0.0.0:"+strconv.Itoa(webhookPort),
		"--tls-cert-file="+f.tlsDir.path("tls.crt"), "--tls-key-file="+f.tlsDir.path("tls.key"),
		"--profiles-file="+profilesDir.path("profiles.yaml"), "--domain="+domain,
		"--reload-interval=1s", "--shutdown-delay=1s", "--log-level=info")
	if err != nil {
		return f, err
	}
	if err := f.waitReady(ctx, net.JoinHostPort(webhookAddress, strconv.Itoa(webhookPort)), webhookServerName(), webhook); err != nil {
		return f, err
	}
	return f, f.createClusterObjects(ctx)
}

// waitReady waits until the ai-webhook process serving at addr (with a
// certificate for serverName from the fixture's CA) answers /readyz with 200.
func (f *fixture) waitReady(ctx context.Context, addr, serverName string, proc *cluster.Process) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool, ServerName: serverName}}}
	defer client.CloseIdleConnections()
	return cluster.Wait(ctx, 30*time.Second, func(ctx context.Context) error {
		return cluster.GetOK(ctx, client, "https://"+addr+"/readyz")
	}, proc)
}

// createClusterObjects creates what the stack would deploy around the
// webhook process: its namespace, its Service and EndpointSlice.
func (f *fixture) createClusterObjects(ctx context.Context) error {
	// The webhook's own namespace carries the opt-in label on purpose: it must
	// stay excluded even then.
	if _, err := f.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   webhookNamespace,
		Labels: map[string]string{injectKey: "enabled"},
	}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	return exposeService(ctx, f.client, webhookNamespace, webhookService, webhookAddress, webhookPort)
}

// rotateServingCert writes a new serving certificate and key from the same CA
// the way the kubelet updates a Secret volume, and returns the new serial.
func (f *fixture) rotateServingCert() (*testpki.Leaf, error) {
	c, err := issueServing(f.ca, webhookService, webhookNamespace)
	if err != nil {
		return nil, err
	}
	return c, f.tlsDir.write(map[string][]byte{"tls.crt": c.CertPEM, "tls.key": c.KeyPEM})
}

// metrics returns the API server's /metrics text.
func (f *fixture) metrics(ctx context.Context) ([]byte, error) {
	data, err := f.client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	return bytes.Clone(data), nil
}

// trackInputs opens every file the webhook binary is built from and stats the
// control-plane binaries, so that `go test` counts them as inputs of this test
// (it records files opened while tests run): its result cache then notices a
// change to the webhook, which TestMain builds in a subprocess it cannot see.
func trackInputs(root string) error {
	if err := (cluster.Options{BinDir: filepath.Join(root, "bin")}).CheckBinaries(); err != nil {
		return err
	}
	for _, f := range []string{"go.work", "go.work.sum"} {
		if fh, err := os.Open(filepath.Join(root, f)); err == nil {
			fh.Close()
		}
	}
	return filepath.WalkDir(filepath.Join(root, "webhook"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			_, err := os.Stat(path) // a new or removed file changes its directory
			return err
		}
		fh, err := os.Open(path)
		if err != nil {
			return err
		}
		return fh.Close()
	})
}

func webhookServerName() string { return webhookService + "." + webhookNamespace + ".svc" }
