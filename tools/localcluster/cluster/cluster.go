// Package cluster runs a Kubernetes control plane on this machine, built only
// from Go modules (bin/, `make tools`), for the control-plane tests, the
// benchmarks, the end-to-end test and `make up`. What runs is chosen by
// Options: etcd (syncing to disk or not) and kube-apiserver always;
// kube-controller-manager; kwok with simulated nodes; and the workload runner.
//
// kwok gives Pods addresses from their node's spec.podCIDR. Inside a private
// network namespace where all of 10.250.0.0/16 is local (package netns), the
// EndpointSlices kube-controller-manager publishes for a Service then point at
// local addresses. kwok never runs containers; for the Pods of the ai-webhook
// Deployment (labelled WorkloadLabelKey=WorkloadLabelValue) the workload
// runner stands in for the kubelet: it writes the Pod's Secret and ConfigMap
// volumes to disk, starts the real ai-webhook binary on the Pod's IP, reports
// the Pod Ready when its readiness probe passes, and shuts it down gracefully
// when the Pod is deleted. The API server (--enable-aggregator-routing) calls
// the webhook the production way: Service -> EndpointSlice -> TLS verified
// against the caBundle. The runner also assigns unscheduled Pods to the nodes
// (there is no kube-scheduler): scheduling constraints are not evaluated.
package cluster

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/keyutil"

	"github.com/ai-webhook/ai-webhook/webhook/testpki"
)

// Node is a simulated node; its Pods get addresses from PodCIDR.
type Node struct {
	Name, IP, PodCIDR string
}

// DefaultNodes are two nodes in netns.PrivateRange, so a Deployment's
// replicas spread. kwok hands out Pod addresses past the end of a node's
// podCIDR once it is used up (10.250.1.x after a /26), where nothing can
// listen: a /20 each holds the thousands of Pods the load tests leave behind.
var DefaultNodes = []Node{
	{Name: "kwok-node-0", IP: "10.250.0.10", PodCIDR: "10.250.16.0/20"},
	{Name: "kwok-node-1", IP: "10.250.0.11", PodCIDR: "10.250.32.0/20"},
}

// PrivateAddress is the API server's address inside a private network
// namespace (package netns).
const PrivateAddress = "10.250.0.1"

// GPURuntimeClass is created with the cluster: the GPU profiles set
// runtimeClassName nvidia, and the API server refuses Pods naming a
// RuntimeClass that does not exist.
const GPURuntimeClass = "nvidia"

// The workload runner runs the Pods labelled so (as infra labels the webhook's).
const (
	WorkloadLabelKey   = "app.kubernetes.io/name"
	WorkloadLabelValue = "ai-webhook"
)

//go:embed kwok.yaml
var kwokStages []byte

// Options choose what runs.
type Options struct {
	// BinDir holds etcd and kube-apiserver, and kube-controller-manager and
	// kwok when they run (`make tools` builds them into bin/).
	BinDir string
	// StateDir receives data, credentials, kubeconfig and logs. Start wipes it.
	StateDir string
	// Address is the API server's (default 127.0.0.1; PrivateAddress inside
	// a private network namespace).
	Address string
	// EtcdFsync makes etcd flush to disk as in a real cluster; without it
	// (--unsafe-no-fsync) the noisy milliseconds of disk flushes are gone.
	EtcdFsync bool
	// APIServerFlags are added to kube-apiserver's.
	APIServerFlags []string
	// ControllerManager runs kube-controller-manager (default ServiceAccounts,
	// EndpointSlices, Deployments).
	ControllerManager bool
	// ControllerManagerFlags are added to kube-controller-manager's.
	ControllerManagerFlags []string
	// Nodes run kwok with these simulated nodes, and the runner that binds
	// Pods to them (none: no kwok, no runner).
	Nodes []Node
	// WebhookBinary is what the runner runs for the workload Pods.
	WebhookBinary string
	// Logf receives progress messages (default: none).
	Logf func(format string, args ...any)
}

// Cluster is a running control plane.
type Cluster struct {
	// Kubeconfig is an admin kubeconfig file for the cluster.
	Kubeconfig string
	// Config and Client talk to the API server as admin.
	Config *rest.Config
	Client kubernetes.Interface

	opts   Options
	procs  []*Process // in start order
	cancel context.CancelFunc
	wg     sync.WaitGroup
	runner *runner
}

// CheckBinaries reports missing executables (what opts needs in BinDir, and
// extra there) with the command that builds them.
func (o Options) CheckBinaries(extra ...string) error {
	bins := append([]string{"etcd", "kube-apiserver"}, extra...)
	if o.ControllerManager {
		bins = append(bins, "kube-controller-manager")
	}
	if len(o.Nodes) > 0 {
		bins = append(bins, "kwok")
	}
	var missing []string
	for _, name := range bins {
		if _, err := os.Stat(filepath.Join(o.BinDir, name)); err != nil {
			missing = append(missing, filepath.Join(o.BinDir, name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: run `make tools` at the repository root to build them from Go modules",
			strings.Join(missing, ", "))
	}
	if _, err := os.Stat(o.WebhookBinary); o.WebhookBinary != "" && err != nil {
		return fmt.Errorf("%w (go build -o bin/ai-webhook ./webhook/cmd/ai-webhook)", err)
	}
	return nil
}

// Start wipes opts.StateDir and starts what opts asks for. On error
// everything started is stopped; the Cluster returned with the error can
// still Report its logs.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.Address == "" {
		opts.Address = "127.0.0.1"
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if err := opts.CheckBinaries(); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(opts.StateDir); err != nil {
		return nil, err
	}
	c = &Cluster{opts: opts}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	ports, err := FreePorts(5)
	if err != nil {
		return c, err
	}
	etcdURL, peerURL := "http://127.0.0.1:"+ports[0], "http://127.0.0.1:"+ports[1]
	pki := func(name string) string { return filepath.Join(opts.StateDir, "pki", name) }
	ca, admin, err := newPKI(pki(""), opts.Address)
	if err != nil {
		return c, err
	}
	server := "https://" + net.JoinHostPort(opts.Address, ports[2])
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca.CertPEM}
	kubeconfig.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: admin.CertPEM, ClientKeyData: admin.KeyPEM}
	kubeconfig.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin"}
	kubeconfig.CurrentContext = "local"
	c.Kubeconfig = filepath.Join(opts.StateDir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, c.Kubeconfig); err != nil {
		return c, err
	}
	if c.Config, err = clientcmd.NewDefaultClientConfig(*kubeconfig, nil).ClientConfig(); err != nil {
		return c, err
	}
	c.Config.QPS, c.Config.Burst = 1000, 1000
	// The webhook warns when the Pod's own value wins; a warning per create is noise here.
	c.Config.WarningHandler = rest.NoWarnings{}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return c, err
	}

	opts.Logf("starting etcd")
	etcd, err := c.Run("etcd",
		"--name=local", "--data-dir="+filepath.Join(opts.StateDir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL, "--initial-cluster=local="+peerURL,
		"--unsafe-no-fsync="+strconv.FormatBool(!opts.EtcdFsync), "--log-level=warn")
	if err != nil {
		return c, err
	}
	if err := Wait(ctx, time.Minute, func(ctx context.Context) error { return GetOK(ctx, http.DefaultClient, etcdURL+"/health") }, etcd); err != nil {
		return c, err
	}

	opts.Logf("starting kube-apiserver")
	apiArgs := []string{
		"--etcd-servers=" + etcdURL,
		"--advertise-address=" + opts.Address, "--bind-address=" + opts.Address, "--secure-port=" + ports[2],
		"--tls-cert-file=" + pki("apiserver.crt"), "--tls-private-key-file=" + pki("apiserver.key"),
		"--client-ca-file=" + pki("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + pki("sa.key"), "--service-account-signing-key-file=" + pki("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC", "--allow-privileged=true",
		// Dial Service-referenced webhooks at an address of the Service's
		// EndpointSlices, not at the ClusterIP (nothing routes those here).
		"--enable-aggregator-routing=true",
		"--profiling=false", "--v=1",
	}
	if net.ParseIP(opts.Address).IsLoopback() {
		// A loopback address cannot back the kubernetes Service's endpoints.
		apiArgs = append(apiArgs, "--endpoint-reconciler-type=none")
	}
	apiserver, err := c.Run("kube-apiserver", append(apiArgs, opts.APIServerFlags...)...)
	if err != nil {
		return c, err
	}
	if err := Wait(ctx, 2*time.Minute, func(ctx context.Context) error {
		return c.Client.CoreV1().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	}, apiserver); err != nil {
		return c, err
	}
	if err := c.createFixtures(ctx); err != nil {
		return c, err
	}

	var watched []*Process
	if opts.ControllerManager {
		opts.Logf("starting kube-controller-manager")
		kcm, err := c.Run("kube-controller-manager", append([]string{
			"--kubeconfig=" + c.Kubeconfig,
			"--authentication-kubeconfig=" + c.Kubeconfig, "--authorization-kubeconfig=" + c.Kubeconfig,
			"--service-account-private-key-file=" + pki("sa.key"), "--root-ca-file=" + pki("ca.crt"),
			"--use-service-account-credentials=false", "--leader-elect=false", "--controllers=*",
			"--bind-address=127.0.0.1", "--secure-port=" + ports[3], "--profiling=false", "--v=1"}, opts.ControllerManagerFlags...)...)
		if err != nil {
			return c, err
		}
		watched = append(watched, kcm)
	}
	if len(opts.Nodes) > 0 {
		opts.Logf("starting kwok")
		kwokConfig := filepath.Join(opts.StateDir, "kwok.yaml")
		if err := os.WriteFile(kwokConfig, kwokStages, 0o644); err != nil {
			return c, err
		}
		kwok, err := c.Run("kwok",
			"--kubeconfig="+c.Kubeconfig, "--config="+kwokConfig,
			"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
			"--node-ip="+opts.Nodes[0].IP, "--cidr="+opts.Nodes[0].PodCIDR,
			"--node-lease-duration-seconds=40", "--server-address=127.0.0.1:"+ports[4])
		if err != nil {
			return c, err
		}
		watched = append(watched, kwok)
		c.runner = newRunner(c.Client, opts, filepath.Join(opts.StateDir, "pods"))
		runCtx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.runner.run(runCtx) }()
	}
	opts.Logf("waiting for nodes and controllers")
	return c, Wait(ctx, 2*time.Minute, c.ready, watched...)
}

// ready: the simulated nodes are Ready and kube-controller-manager made the
// default ServiceAccount (Pods need it).
func (c *Cluster) ready(ctx context.Context) error {
	if c.opts.ControllerManager {
		if _, err := c.Client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return err
		}
	}
	for _, n := range c.opts.Nodes {
		node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !nodeReady(node) {
			return fmt.Errorf("node %s is not Ready yet", n.Name)
		}
	}
	return nil
}

// Run starts bin/name (from BinDir, or a path) with args, logging to the
// cluster's logs; Stop stops it and Report shows its log.
func (c *Cluster) Run(name string, args ...string) (*Process, error) {
	bin := name
	if !filepath.IsAbs(name) {
		bin = filepath.Join(c.opts.BinDir, name)
	}
	name = filepath.Base(name)
	p, err := StartProcess(Command{Name: name, Argv: append([]string{bin}, args...),
		Log: filepath.Join(c.opts.StateDir, "logs", name+".log")})
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// createFixtures makes what a GPU cluster has: the simulated nodes (with GPU
// capacity) and the nvidia RuntimeClass.
func (c *Cluster) createFixtures(ctx context.Context) error {
	qty := resource.MustParse
	for _, n := range c.opts.Nodes {
		capacity := corev1.ResourceList{
			corev1.ResourceCPU: qty("32"), corev1.ResourceMemory: qty("256Gi"), corev1.ResourcePods: qty("110"),
			"nvidia.com/gpu": qty("8"),
		}
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        n.Name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels: map[string]string{
					corev1.LabelHostname: n.Name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64",
					"type": "kwok", "nvidia.com/gpu.present": "true",
				},
			},
			Spec: corev1.NodeSpec{PodCIDR: n.PodCIDR, PodCIDRs: []string{n.PodCIDR}},
			Status: corev1.NodeStatus{
				Capacity: capacity, Allocatable: capacity,
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}, {Type: corev1.NodeHostName, Address: n.Name}},
			},
		}
		if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
	}
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: GPURuntimeClass}, Handler: GPURuntimeClass}
	if _, err := c.Client.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create RuntimeClass %s: %w", GPURuntimeClass, err)
	}
	return nil
}

// Report writes the end of every log (control plane, webhook Pods), for
// failures.
func (c *Cluster) Report(w io.Writer) {
	var logs []string
	for _, p := range c.procs {
		logs = append(logs, p.Log)
	}
	if c.runner != nil {
		logs = append(logs, c.runner.logFiles()...)
	}
	for _, l := range logs {
		fmt.Fprintf(w, "----- last lines of %s -----\n%s\n", l, Tail(l, 40))
	}
}

// Stop stops the webhook Pods' processes, then everything Run started, in
// reverse order.
func (c *Cluster) Stop() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop(10 * time.Second)
	}
}

// newPKI writes the cluster's own credentials to dir: a CA (ca.crt), the API server's
// serving certificate (apiserver.crt, .key) and the service-account signing key (sa.key,
// SEC 1, which kube-apiserver reads both as public and private key); it returns the CA and
// an admin client certificate (system:masters).
func newPKI(dir, address string) (*testpki.CA, *testpki.Leaf, error) {
	ca, err := testpki.NewCA("cluster-ca", 10*365*24*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	server, err1 := ca.Serving("kube-apiserver", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", address, "127.0.0.1", "10.96.0.1")
	admin, err2 := ca.Client("cluster-admin", "system:masters")
	saKey, err3 := keyutil.MakeEllipticPrivateKeyPEM()
	if err := errors.Join(err1, err2, err3, os.MkdirAll(dir, 0o700)); err != nil {
		return nil, nil, err
	}
	for name, data := range map[string][]byte{
		"ca.crt": ca.CertPEM, "apiserver.crt": server.CertPEM, "apiserver.key": server.KeyPEM, "sa.key": saKey,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, nil, err
		}
	}
	return ca, admin, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// GetOK is nil when a GET of url with client answers 200 OK.
func GetOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// FreePorts returns n ports free on loopback now.
func FreePorts(n int) ([]string, error) {
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close() // all held until the end, so they differ
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}
