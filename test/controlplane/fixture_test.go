package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ai-webhook/ai-webhook/test/internal/testpki"
)

// Names and addresses of the cluster the tests build. Everything in
// 10.250.0.0/24 is local inside the test's network namespace.
const (
	domain           = "ai.example.com"
	profileKey       = domain + "/profile"
	injectKey        = domain + "/inject"
	injectedKey      = domain + "/injected"
	gpuProfile       = "gpu-training" // in testdata/profiles.yaml
	webhookNamespace = "ai-webhook"
	webhookService   = "ai-webhook"
	webhookName      = domain                // the webhook's name in the configuration, as the stack names it
	configName       = "ai-mutating-webhook" // the stack's MutatingWebhookConfiguration

	apiServerAddress = "10.250.0.1"  // --advertise-address
	webhookAddress   = "10.250.0.10" // the ai-webhook process, as its EndpointSlice says
	webhookPort      = 8443
)

// fx is the control plane and webhook shared by all tests of the package,
// started by the first test that calls requireControlPlane and stopped by
// TestMain, inside the private network namespace.
var (
	fx      *fixture
	fxOnce  sync.Once
	fxError error
)

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
	root    string
	workDir string
	logs    map[string]string // component -> log file

	env           *envtest.Environment
	client        kubernetes.Interface
	ca            *testpki.CA
	tlsDir        projectedDir // the webhook's Secret volume: tls.crt, tls.key
	webhook       *exec.Cmd
	webhookExited chan struct{} // closed when the webhook process has exited
}

func startFixture(root, webhookBin, workDir string) (*fixture, error) {
	if root == "" || webhookBin == "" || workDir == "" {
		return nil, errors.New("run through TestMain: the outer process sets up the namespace")
	}
	logf.SetLogger(logr.Discard()) // envtest logs through controller-runtime; its errors are returned
	f := &fixture{root: root, workDir: workDir, logs: map[string]string{}}
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

	if err := f.startControlPlane(); err != nil {
		return f, err
	}
	if err := f.startWebhook(webhookBin, profilesDir.path("profiles.yaml")); err != nil {
		return f, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return f, f.createClusterObjects(ctx)
}

func (f *fixture) startControlPlane() error {
	bin := filepath.Join(f.root, "bin")
	apiLog, err := f.logFile("kube-apiserver")
	if err != nil {
		return err
	}
	etcdLog, err := f.logFile("etcd")
	if err != nil {
		return err
	}
	f.env = &envtest.Environment{
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cp := &f.env.ControlPlane
	cp.Etcd = &envtest.Etcd{Path: filepath.Join(bin, "etcd"), Out: etcdLog, Err: etcdLog}
	api := cp.GetAPIServer()
	api.Path = filepath.Join(bin, "kube-apiserver")
	api.Out, api.Err = apiLog, apiLog
	cp.KubectlPath = filepath.Join(bin, "kubectl")
	// envtest already disables the ServiceAccount admission plugin (no
	// controller-manager creates the default ServiceAccount).
	api.Configure().
		Set("advertise-address", apiServerAddress).
		Set("enable-aggregator-routing", "true")

	cfg, err := f.env.Start()
	if err != nil {
		return fmt.Errorf("start etcd and kube-apiserver from %s: %w", bin, err)
	}
	f.client, err = kubernetes.NewForConfig(cfg)
	return err
}

// startWebhook runs `ai-webhook serve` as the Deployment does, with files laid
// out like its Secret and ConfigMap volumes.
func (f *fixture) startWebhook(bin, profilesFile string) error {
	out, err := f.logFile("ai-webhook")
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve",
		"--listen=0.0.0.0:"+strconv.Itoa(webhookPort),
		"--tls-cert-file="+f.tlsDir.path("tls.crt"),
		"--tls-key-file="+f.tlsDir.path("tls.key"),
		"--profiles-file="+profilesFile,
		"--domain="+domain,
		"--reload-interval=1s",
		"--shutdown-delay=1s",
		"--log-level=info",
	)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	f.webhook = cmd
	f.webhookExited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(f.webhookExited) }()

	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool, ServerName: webhookServerName()}},
	}
	defer client.CloseIdleConnections()
	url := "https://" + net.JoinHostPort(webhookAddress, strconv.Itoa(webhookPort)) + "/readyz"
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-f.webhookExited:
			return fmt.Errorf("ai-webhook serve exited early (%v); its log is printed below", cmd.ProcessState)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("ai-webhook not ready at %s within 30s: %v", url, lastErr)
}

// createClusterObjects creates what the stack would deploy around the
// webhook process: its namespace, its Service and EndpointSlice, and the
// RuntimeClass the GPU profiles name (without it the RuntimeClass admission
// plugin rejects every mutated Pod).
func (f *fixture) createClusterObjects(ctx context.Context) error {
	// The webhook's own namespace carries the opt-in label on purpose: it must
	// stay excluded even then.
	if _, err := f.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   webhookNamespace,
		Labels: map[string]string{injectKey: "enabled"},
	}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := exposeService(ctx, f.client, webhookService, webhookAddress, webhookPort); err != nil {
		return err
	}
	_, err := f.client.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "nvidia"},
		Handler:    "nvidia",
	}, metav1.CreateOptions{})
	return err
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

func (f *fixture) logFile(component string) (*os.File, error) {
	path := filepath.Join(f.workDir, component+".log")
	f.logs[component] = path
	return os.Create(path)
}

// dumpLogs prints the end of each component's log, for failures.
func (f *fixture) dumpLogs(w io.Writer) {
	for _, component := range []string{"ai-webhook", "kube-apiserver", "etcd"} {
		path, ok := f.logs[component]
		if !ok {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if n := 60; len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(w, "---- last %d lines of the %s log ----\n%s\n", len(lines), component, strings.Join(lines, "\n"))
	}
}

func (f *fixture) stop() {
	if f.webhook != nil && f.webhook.Process != nil {
		_ = f.webhook.Process.Signal(syscall.SIGTERM)
		select {
		case <-f.webhookExited:
		case <-time.After(15 * time.Second):
			_ = f.webhook.Process.Kill()
		}
	}
	if f.env != nil {
		if err := f.env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop control plane: %v\n", err)
		}
	}
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
	for _, name := range controlPlaneBinaries {
		if _, err := os.Stat(filepath.Join(root, "bin", name)); err != nil {
			return err
		}
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
