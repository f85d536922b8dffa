// Package localcluster runs a small Kubernetes cluster on this machine, built
// only from Go modules: etcd, kube-apiserver, kube-controller-manager and kwok
// (simulated nodes), inside a private network namespace where all of
// 10.250.0.0/24 is local.
//
// kwok gives Pods addresses from their node's spec.podCIDR, which lies in that
// range, so the EndpointSlices that kube-controller-manager publishes for a
// Service point at local addresses. kwok never runs containers; for the Pods
// of the ai-webhook Deployment (selected by a label) the workload runner
// stands in for the kubelet: it writes the Pod's Secret and ConfigMap volumes
// to disk, starts the real ai-webhook binary listening on the Pod's IP,
// reports the Pod Ready when its readiness probe passes, and shuts it down
// gracefully when the Pod is deleted. The API server
// (--enable-aggregator-routing) then calls the webhook the production way:
// Service -> EndpointSlice -> TLS verified against the caBundle.
//
// A tiny binder assigns unscheduled Pods to the simulated nodes (there is no
// kube-scheduler): scheduling constraints are not evaluated.
//
// Start must run inside the private network namespace (see package
// test/internal/netns); the localcluster command and the end-to-end tests
// arrange that.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Addresses inside the private network namespace, where all of
// netns.PrivateRange is local.
const (
	// APIServerIP is kube-apiserver's advertise and bind address.
	APIServerIP         = "10.250.0.1"
	apiServerPort       = "6443"
	serviceCIDR         = "10.96.0.0/16"
	kubernetesServiceIP = "10.96.0.1"
	etcdURL             = "http://127.0.0.1:2379"
)

// Node is a simulated node; its Pods get addresses from PodCIDR.
type Node struct {
	Name, IP, PodCIDR string
}

// DefaultNodes are two nodes, so the Deployment's replicas spread.
var DefaultNodes = []Node{
	{Name: "kwok-node-0", IP: "10.250.0.10", PodCIDR: "10.250.0.128/26"},
	{Name: "kwok-node-1", IP: "10.250.0.11", PodCIDR: "10.250.0.192/26"},
}

// GPURuntimeClass is created with the cluster: the shipped GPU profiles set
// runtimeClassName nvidia, and the API server refuses Pods naming a
// RuntimeClass that does not exist.
const GPURuntimeClass = "nvidia"

// Binaries names the executables Start needs in Options.BinDir.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kwok"}

// Options configure Start.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and kwok.
	BinDir string
	// StateDir receives data, credentials, kubeconfig and logs. Start wipes it.
	StateDir string
	// WebhookBinary is run for every Pod labelled WorkloadLabelKey=WorkloadLabelValue.
	WebhookBinary string
	// WorkloadLabelKey and WorkloadLabelValue select the Pods the runner
	// runs (default app.kubernetes.io/name=ai-webhook, what infra labels them).
	WorkloadLabelKey, WorkloadLabelValue string
	// Nodes default to DefaultNodes.
	Nodes []Node
	// Logf receives progress messages (default: none).
	Logf func(format string, args ...any)
}

// Cluster is a running local cluster.
type Cluster struct {
	// Kubeconfig is an admin kubeconfig file for the cluster.
	Kubeconfig string
	// Config and Client talk to the API server as admin.
	Config *rest.Config
	Client kubernetes.Interface

	opts   Options
	procs  []*process // in start order
	cancel context.CancelFunc
	wg     sync.WaitGroup
	runner *runner
}

// Start wipes opts.StateDir and starts the cluster. It must run inside the
// private network namespace. On error everything started is stopped.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.WorkloadLabelKey == "" {
		opts.WorkloadLabelKey, opts.WorkloadLabelValue = "app.kubernetes.io/name", "ai-webhook"
	}
	if len(opts.Nodes) == 0 {
		opts.Nodes = DefaultNodes
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if err := CheckBinaries(opts.BinDir, opts.WebhookBinary); err != nil {
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
	logs := filepath.Join(opts.StateDir, "logs")
	pki, err := newPKI(filepath.Join(opts.StateDir, "pki"))
	if err != nil {
		return c, err
	}
	c.Kubeconfig = filepath.Join(opts.StateDir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, pki); err != nil {
		return c, err
	}
	c.Config = &rest.Config{
		Host: "https://" + APIServerIP + ":" + apiServerPort,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: pki.caPEM, CertData: pki.adminCertPEM, KeyData: pki.adminKeyPEM,
		},
		QPS: 100, Burst: 200,
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return c, err
	}

	opts.Logf("starting etcd")
	etcd, err := c.start("etcd", logs, nil,
		"--name=local", "--data-dir="+filepath.Join(opts.StateDir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=local=http://127.0.0.1:2380",
		"--unsafe-no-fsync", "--log-level=warn")
	if err != nil {
		return c, err
	}
	if err := waitFor(ctx, 60*time.Second, etcd, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, etcdURL+"/health")
	}); err != nil {
		return c, err
	}

	opts.Logf("starting kube-apiserver")
	apiserver, err := c.start("kube-apiserver", logs, nil,
		"--etcd-servers="+etcdURL,
		"--advertise-address="+APIServerIP, "--bind-address="+APIServerIP, "--secure-port="+apiServerPort,
		"--tls-cert-file="+pki.serverCert, "--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+pki.saPub, "--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range="+serviceCIDR,
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		// Dial Service-referenced webhooks at an address of the Service's
		// EndpointSlices, which kwok made local, not at the ClusterIP.
		"--enable-aggregator-routing=true",
		"--profiling=false", "--v=1")
	if err != nil {
		return c, err
	}
	if err := waitFor(ctx, 120*time.Second, apiserver, func(ctx context.Context) error {
		return c.Client.CoreV1().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	}); err != nil {
		return c, err
	}

	if err := c.createFixtures(ctx); err != nil {
		return c, err
	}

	opts.Logf("starting kube-controller-manager")
	kcm, err := c.start("kube-controller-manager", logs, nil,
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--service-account-private-key-file="+pki.saKey, "--root-ca-file="+pki.caCert,
		"--use-service-account-credentials=false",
		"--leader-elect=false", "--controllers=*",
		"--bind-address=127.0.0.1", "--secure-port=10257",
		"--profiling=false", "--v=1")
	if err != nil {
		return c, err
	}

	opts.Logf("starting kwok")
	kwokConfig := filepath.Join(opts.StateDir, "kwok.yaml")
	if err := os.WriteFile(kwokConfig, []byte(kwokStages(opts.WorkloadLabelKey, opts.WorkloadLabelValue)), 0o644); err != nil {
		return c, err
	}
	kwok, err := c.start("kwok", logs, nil,
		"--kubeconfig="+c.Kubeconfig, "--config="+kwokConfig,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-ip="+opts.Nodes[0].IP, "--cidr="+opts.Nodes[0].PodCIDR,
		"--node-lease-duration-seconds=40", "--server-address=127.0.0.1:10247")
	if err != nil {
		return c, err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.runner = newRunner(c.Client, opts, filepath.Join(opts.StateDir, "pods"))
	for _, run := range []func(context.Context){c.runner.run, newBinder(c.Client).run} {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); run(runCtx) }()
	}

	// Ready when the simulated nodes are and kube-controller-manager made the
	// default ServiceAccount (Pods need it).
	opts.Logf("waiting for nodes and controllers")
	watched := &multiProcess{kcm, kwok}
	if err := waitFor(ctx, 120*time.Second, watched, func(ctx context.Context) error {
		if _, err := c.Client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return err
		}
		for _, n := range opts.Nodes {
			node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !nodeReady(node) {
				return fmt.Errorf("node %s is not Ready yet", n.Name)
			}
		}
		return nil
	}); err != nil {
		return c, err
	}
	return c, nil
}

// CheckBinaries reports missing executables with the command that builds them.
func CheckBinaries(binDir, webhookBinary string) error {
	var missing []string
	for _, name := range Binaries {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			missing = append(missing, filepath.Join(binDir, name))
		}
	}
	if webhookBinary == "" {
		missing = append(missing, "the ai-webhook binary (go build -o bin/ai-webhook ./webhook/cmd/ai-webhook)")
	} else if _, err := os.Stat(webhookBinary); err != nil {
		missing = append(missing, webhookBinary+" (go build -o bin/ai-webhook ./webhook/cmd/ai-webhook)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: run `make tools` at the repository root to build the control plane from Go modules",
			strings.Join(missing, ", "))
	}
	return nil
}

func (c *Cluster) start(name, logs string, env []string, args ...string) (*process, error) {
	p, err := startProcess(name, filepath.Join(logs, name+".log"), filepath.Join(c.opts.BinDir, name), env, args...)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// createFixtures makes what a GPU cluster would have: the simulated nodes
// (with GPU capacity) and the nvidia RuntimeClass.
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
		if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
	}
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: GPURuntimeClass}, Handler: GPURuntimeClass}
	if _, err := c.Client.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create RuntimeClass %s: %w", GPURuntimeClass, err)
	}
	return nil
}

// WebhookLogs returns the log files of the webhook processes started so far.
func (c *Cluster) WebhookLogs() []string {
	if c.runner == nil {
		return nil
	}
	return c.runner.logFiles()
}

// Logs returns the log file of each control-plane component.
func (c *Cluster) Logs() map[string]string {
	logs := map[string]string{}
	for _, p := range c.procs {
		logs[p.name] = p.log
	}
	return logs
}

// Stop stops the webhook processes, then the control plane in reverse order.
func (c *Cluster) Stop() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(10 * time.Second)
	}
}

func writeKubeconfig(path string, p *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{
		Server:                   "https://" + APIServerIP + ":" + apiServerPort,
		CertificateAuthorityData: p.caPEM,
	}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin"}
	cfg.CurrentContext = "local"
	return clientcmd.WriteToFile(*cfg, path)
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// exitWatcher is a process (or several) whose exit aborts a wait.
type exitWatcher interface {
	failure() error
}

func (p *process) failure() error {
	if !p.exited() {
		return nil
	}
	return fmt.Errorf("%s exited (%v); last log lines:\n%s", p.name, p.err, p.tail(30))
}

type multiProcess []*process

func (m *multiProcess) failure() error {
	for _, p := range *m {
		if err := p.failure(); err != nil {
			return err
		}
	}
	return nil
}

// waitFor polls check until it succeeds, the timeout passes, or a watched
// process exits.
func waitFor(ctx context.Context, timeout time.Duration, w exitWatcher, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if err := w.failure(); err != nil {
			return err
		}
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", timeout, errors.Join(last, w.failure()))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
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
