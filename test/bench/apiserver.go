package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/test/internal/testpki"
)

// B4Config bounds B4.
type B4Config struct {
	Rounds int // each round creates Pods under every condition, in rotated order
	Pods   int // Pods created per condition per round, one after another
	// NoFsync runs etcd with --unsafe-no-fsync: disk flushes no longer add their noisy
	// milliseconds to every create, the baseline gets faster and a webhook's relative
	// overhead larger (the strict view). Without it etcd syncs as in a real cluster.
	NoFsync bool
}

// B4Cond is Pod-create latency under one condition.
type B4Cond struct {
	Name   string // NoWebhook, or the server registered
	Lat    Latencies
	Failed int
	Err    error
}

// B4Result is B4; Skipped says why it did not run.
type B4Result struct {
	Config  B4Config
	Skipped string
	Err     error
	Conds   []B4Cond
}

// NoWebhook names the baseline condition of B4.
const NoWebhook = "no webhook"

const (
	b4Namespace   = "bench"
	b4WebhookName = "ai-webhook-bench"
)

// b4cond is a condition: a server to register (nil for none).
type b4cond struct {
	name   string
	server *Server
}

// RunB4 creates the same Pods through a real kube-apiserver (and etcd) from bin/ with no
// mutating webhook registered and with each server registered in turn (same control
// plane, same run, conditions rotated every round so drift favours none of them).
func RunB4(ctx context.Context, fx *Fixture, root string, cfg B4Config, servers []*Server, progress func(string)) *B4Result {
	res := &B4Result{Config: cfg}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(root, "bin", name)); err != nil {
			res.Skipped = fmt.Sprintf("B4 not run: bin/%s missing (make tools)", name)
			return res
		}
	}
	dir, err := os.MkdirTemp(fx.Dir, "controlplane-")
	if err != nil {
		res.Err = err
		return res
	}
	progress(fmt.Sprintf("B4 starting etcd (no fsync: %v) and kube-apiserver", cfg.NoFsync))
	cp, err := StartControlPlane(ctx, root, dir, fx.CA, cfg.NoFsync)
	if err != nil {
		res.Err = err
		return res
	}
	defer cp.Stop()
	if err := cp.prepare(ctx); err != nil {
		res.Err = err
		return res
	}
	conds := []b4cond{{name: NoWebhook}}
	for _, s := range servers {
		conds = append(conds, b4cond{name: s.Name, server: s})
	}
	lat := map[string][]time.Duration{}
	failed := map[string]int{}
	errs := map[string]error{}
	pod := fx.Example.DeepCopy()
	pod.Namespace = b4Namespace
	current := conds[0]
	for round := range cfg.Rounds {
		for k := range conds {
			ci := (k + round) % len(conds)
			cond := conds[ci]
			progress(fmt.Sprintf("B4 round %d/%d: %d Pods, %s", round+1, cfg.Rounds, cfg.Pods, cond.name))
			if err := cp.switchTo(ctx, fx, current, cond); err != nil {
				res.Err = fmt.Errorf("register %s: %w", cond.name, err)
				return res
			}
			current = cond
			stamps := cond.server != nil && !cond.server.Target.AllowOnly
			for i := range cfg.Pods {
				p := pod.DeepCopy()
				p.Name = fmt.Sprintf("trainer-r%d-c%d-%d", round, ci, i)
				t0 := time.Now()
				got, err := cp.Client.CoreV1().Pods(b4Namespace).Create(ctx, p, metav1.CreateOptions{})
				d := time.Since(t0)
				if err == nil && (got.Annotations[Domain+"/injected"] != "") != stamps {
					err = fmt.Errorf("pod %s: injected annotation %q under %q", p.Name, got.Annotations[Domain+"/injected"], cond.name)
				}
				if err != nil {
					failed[cond.name]++
					if errs[cond.name] == nil {
						errs[cond.name] = err
					}
					continue
				}
				lat[cond.name] = append(lat[cond.name], d)
			}
		}
	}
	for _, c := range conds {
		res.Conds = append(res.Conds, B4Cond{Name: c.name, Lat: Summarise(lat[c.name]), Failed: failed[c.name], Err: errs[c.name]})
	}
	return res
}

// ControlPlane is etcd and kube-apiserver on loopback, with a client authenticated as a
// cluster admin.
type ControlPlane struct {
	Client    *kubernetes.Clientset
	etcd, api *Proc
}

// StartControlPlane starts bin/etcd (with --unsafe-no-fsync if noFsync) and
// bin/kube-apiserver with their data and logs in dir and waits until the API server is
// ready.
func StartControlPlane(ctx context.Context, root, dir string, ca *testpki.CA, noFsync bool) (*ControlPlane, error) {
	cp := &ControlPlane{}
	ok := false
	defer func() {
		if !ok {
			cp.Stop()
		}
	}()
	ports := make([]int, 3)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	var err error
	cp.etcd, err = StartProc("etcd", dir, nil, Launcher{Argv: []string{filepath.Join(root, "bin", "etcd")}},
		"--name=bench", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer, "--initial-cluster=bench="+peer,
		"--unsafe-no-fsync="+strconv.FormatBool(noFsync), "--log-level=warn")
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 30*time.Second, cp.etcd, func() error {
		resp, err := http.Get(client + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd /health: HTTP %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		return nil, err
	}

	apiserver, err := ca.Serving("127.0.0.1", "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	admin, err := ca.Client("bench-admin", "system:masters")
	if err != nil {
		return nil, err
	}
	pem := map[string][]byte{
		"apiserver.crt": apiserver.CertPEM, "apiserver.key": apiserver.KeyPEM,
		"admin.crt": admin.CertPEM, "admin.key": admin.KeyPEM,
		"ca.crt": ca.CertPEM,
	}
	if pem["sa.key"], err = testpki.ECKeyPEM(); err != nil {
		return nil, err
	}
	for name, data := range pem {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	cp.api, err = StartProc("kube-apiserver", dir, nil, Launcher{Argv: []string{filepath.Join(root, "bin", "kube-apiserver")}},
		"--etcd-servers="+client,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[2]),
		// A loopback advertise address cannot back the kubernetes Service's endpoints; nothing
		// here needs them (the webhook is called by URL).
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+f("apiserver.crt"), "--tls-private-key-file="+f("apiserver.key"), "--cert-dir="+f("apiserver-certs"),
		"--client-ca-file="+f("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+f("sa.key"), "--service-account-signing-key-file="+f("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=Node,RBAC")
	if err != nil {
		return nil, err
	}
	cfg := &rest.Config{
		Host:            "https://127.0.0.1:" + strconv.Itoa(ports[2]),
		TLSClientConfig: rest.TLSClientConfig{CAData: ca.CertPEM, CertData: pem["admin.crt"], KeyData: pem["admin.key"]},
		QPS:             1000, Burst: 1000,
		// The webhook warns when the Pod's own value wins; a warning per create is noise here.
		WarningHandler: rest.NoWarnings{},
	}
	if cp.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 90*time.Second, cp.api, func() error {
		b, err := cp.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s", err, b)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	ok = true
	return cp, nil
}

// waitFor retries check until it passes, p exits, or timeout.
func waitFor(ctx context.Context, timeout time.Duration, p *Proc, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := p.Exited(); err != nil {
			return err
		}
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v; log:\n%s", p.Name, timeout, err, p.LogTail(3000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends the API server, then etcd.
func (cp *ControlPlane) Stop() {
	for _, p := range []*Proc{cp.api, cp.etcd} {
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
}

// prepare creates what the Pods need with no controller-manager running: the namespace,
// its default ServiceAccount (the ServiceAccount admission plugin requires it) and the
// RuntimeClass the profile sets (the RuntimeClass plugin refuses Pods naming an unknown one).
func (cp *ControlPlane) prepare(ctx context.Context) error {
	c := cp.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b4Namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := c.CoreV1().ServiceAccounts(b4Namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := c.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "nvidia"}, Handler: "nvidia"}, metav1.CreateOptions{})
	return err
}

// switchTo replaces the webhook configuration of condition from by that of to and waits
// until the API server acts on the change: the old configuration is deleted and seen gone
// (dry-run creates no longer reach its server) before the new one is created and seen in
// effect, so an answer can only come from the configuration meant.
func (cp *ControlPlane) switchTo(ctx context.Context, fx *Fixture, from, to b4cond) error {
	api := cp.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if from.server != nil {
		if err := api.Delete(ctx, b4WebhookName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err := cp.waitCalled(ctx, fx, from.server, false); err != nil {
			return err
		}
	}
	if to.server == nil {
		return nil
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: b4WebhookName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "pods." + Domain,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://" + to.server.Addr + "/mutate"), CABundle: fx.CA.CertPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
					Resources: []string{"pods"}, Scope: ptr.To(admissionregistrationv1.NamespacedScope)},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": b4Namespace}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
		}},
	}
	if _, err := api.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return err
	}
	return cp.waitCalled(ctx, fx, to.server, true)
}

// waitCalled dry-run creates a probe Pod until s is (or is no longer) called for it: a
// mutating server shows in the stamp on the answer, the no-op server in its request count.
func (cp *ControlPlane) waitCalled(ctx context.Context, fx *Fixture, s *Server, want bool) error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		called, err := cp.probe(ctx, fx, s)
		if err == nil && called == want {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("the API server does not act on the change yet (calls %s: %v)", s.Name, called)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("webhook configuration change not in effect after 30s: %v", last)
}

func (cp *ControlPlane) probe(ctx context.Context, fx *Fixture, s *Server) (bool, error) {
	var before int64
	if s.Target.AllowOnly {
		n, err := s.Count(ctx)
		if err != nil {
			return false, err
		}
		before = n
	}
	p := fx.Example.DeepCopy()
	p.Namespace, p.Name = b4Namespace, "probe"
	got, err := cp.Client.CoreV1().Pods(b4Namespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return false, err
	}
	if !s.Target.AllowOnly {
		return got.Annotations[Domain+"/injected"] != "", nil
	}
	after, err := s.Count(ctx)
	return after > before, err
}
