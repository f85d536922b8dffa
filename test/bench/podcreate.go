package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

// PodCreateConfig bounds the Pod-create measurement (B4 in the report).
type PodCreateConfig struct {
	Rounds int // each round creates Pods under every condition, in rotated order
	Pods   int // Pods created per condition per round, one after another
	// NoFsync runs etcd with --unsafe-no-fsync: disk flushes no longer add their noisy
	// milliseconds to every create, the baseline gets faster and a webhook's relative
	// overhead larger (the strict view). Without it etcd syncs as in a real cluster.
	NoFsync bool
}

// PodCreateCondition is Pod-create latency under one condition.
type PodCreateCondition struct {
	Name   string // NoWebhook, or the server registered
	Lat    Latencies
	Failed int
	Err    error
}

// PodCreateResult is the Pod-create latency under each condition; Skipped says why it was not measured.
type PodCreateResult struct {
	Config  PodCreateConfig
	Skipped string
	Err     error
	Conds   []PodCreateCondition
}

// NoWebhook names the baseline condition of the Pod-create measurement.
const NoWebhook = "no webhook"

const (
	podCreateNamespace   = "bench"
	podCreateWebhookName = "ai-webhook-bench"
)

// RunPodCreates creates the same Pods through a real kube-apiserver (and etcd) from bin/ with no
// mutating webhook registered and with each server registered in turn (same control
// plane, same run, conditions rotated every round so drift favours none of them).
func RunPodCreates(ctx context.Context, fx *Fixture, root string, cfg PodCreateConfig, servers []*Server, progress func(string)) *PodCreateResult {
	res := &PodCreateResult{Config: cfg}
	opts := cluster.Options{BinDir: filepath.Join(root, "bin"), StateDir: filepath.Join(fx.Dir, "cluster"), EtcdFsync: !cfg.NoFsync}
	if err := opts.CheckBinaries(); err != nil {
		res.Skipped = "Pod-create latency not measured: " + err.Error()
		return res
	}
	progress(fmt.Sprintf("Pod creates: starting etcd (no fsync: %v) and kube-apiserver", cfg.NoFsync))
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		res.Err = err
		return res
	}
	defer c.Stop()
	client := c.Client
	if err := createNamespace(ctx, client, podCreateNamespace); err != nil {
		res.Err = err
		return res
	}
	conds := append([]*Server{nil, policyCondition}, servers...) // nil: no webhook registered
	name := func(s *Server) string {
		if s == nil {
			return NoWebhook
		}
		return s.Name
	}
	recs := map[*Server]*Phase{}
	for _, c := range conds {
		recs[c] = &Phase{}
	}
	pod := fx.Example.DeepCopy()
	pod.Namespace = podCreateNamespace
	var current *Server
	for round := range cfg.Rounds {
		for k := range conds {
			ci := (k + round) % len(conds)
			cond := conds[ci]
			progress(fmt.Sprintf("Pod creates, round %d/%d: %d Pods, %s", round+1, cfg.Rounds, cfg.Pods, name(cond)))
			if err := switchTo(ctx, client, fx, current, cond); err != nil {
				res.Err = fmt.Errorf("register %s: %w", name(cond), err)
				return res
			}
			current = cond
			stamps := cond != nil && !cond.AllowOnly
			for i := range cfg.Pods {
				p := pod.DeepCopy()
				p.Name = fmt.Sprintf("trainer-r%d-c%d-%d", round, ci, i)
				t0 := time.Now()
				got, err := client.CoreV1().Pods(podCreateNamespace).Create(ctx, p, metav1.CreateOptions{})
				d := time.Since(t0)
				if err == nil && (got.Annotations[Domain+"/injected"] != "") != stamps {
					err = fmt.Errorf("pod %s: injected annotation %q under %q", p.Name, got.Annotations[Domain+"/injected"], name(cond))
				}
				recs[cond].record(d, err)
			}
		}
	}
	for _, c := range conds {
		r := recs[c]
		res.Conds = append(res.Conds, PodCreateCondition{Name: name(c), Lat: Summarise(r.Lat), Failed: r.Failed, Err: r.Err})
	}
	return res
}

// switchTo replaces the webhook configuration of condition from by that of to and waits
// until the API server acts on the change: the old configuration is deleted and seen gone
// (dry-run creates no longer reach its server) before the new one is created and seen in
// effect, so an answer can only come from the configuration meant.
func switchTo(ctx context.Context, client kubernetes.Interface, fx *Fixture, from, to *Server) error {
	api := client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if from == policyCondition { // podcreate_policy.go
		if err := setPolicies(ctx, client, fx, false); err != nil {
			return err
		}
		from = nil
	}
	if from != nil {
		if err := api.Delete(ctx, podCreateWebhookName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err := waitCalled(ctx, client, fx, from, false); err != nil {
			return err
		}
	}
	if to == nil {
		return nil
	}
	if to == policyCondition {
		return setPolicies(ctx, client, fx, true)
	}
	cfg := webhookConfig(podCreateWebhookName, "https://"+to.Addr+"/mutate", fx.CA.CertPEM, podCreateNamespace)
	if _, err := api.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return err
	}
	return waitCalled(ctx, client, fx, to, true)
}

// createNamespace creates namespace ns and its default ServiceAccount: the ServiceAccount
// admission plugin adds the token volume the typical Pod has (AdmittedPodFile), and with no
// controller-manager nothing else makes that ServiceAccount.
func createNamespace(ctx context.Context, client kubernetes.Interface, ns string) error {
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err == nil {
		_, err = client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	}
	return err
}

// webhookConfig registers the server at url, trusted through caBundle, for the Pod creates of
// namespace ns: failurePolicy Fail, the default 10 s timeout, never reinvoked.
func webhookConfig(name, url string, caBundle []byte, ns string) *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "pods." + Domain,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To(url), CABundle: caBundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
					Resources: []string{"pods"}, Scope: ptr.To(admissionregistrationv1.NamespacedScope)},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
		}},
	}
}

// waitCalled dry-run creates a probe Pod until s is (or is no longer) called for it: a
// mutating server shows in the stamp on the answer, the no-op server in its request count.
func waitCalled(ctx context.Context, client kubernetes.Interface, fx *Fixture, s *Server, want bool) error {
	err := cluster.Wait(ctx, 30*time.Second, func(ctx context.Context) error {
		called, err := probe(ctx, client, fx, s)
		if err == nil && called != want {
			err = fmt.Errorf("the API server does not act on the change yet (calls %s: %v)", s.Name, called)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("webhook configuration change: %w", err)
	}
	return nil
}

func probe(ctx context.Context, client kubernetes.Interface, fx *Fixture, s *Server) (bool, error) {
	var before int64
	if s.AllowOnly {
		n, err := s.Count(ctx)
		if err != nil {
			return false, err
		}
		before = n
	}
	p := fx.Example.DeepCopy()
	p.Namespace, p.Name = podCreateNamespace, "probe"
	got, err := client.CoreV1().Pods(podCreateNamespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return false, err
	}
	if !s.AllowOnly {
		return got.Annotations[Domain+"/injected"] != "", nil
	}
	after, err := s.Count(ctx)
	return after > before, err
}
