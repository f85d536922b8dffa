package e2e

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/ai-webhook/ai-webhook/test/internal/certmanager"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

// What the stack creates in certManager mode for the dev stack's name and namespace
// (webhookstack.CertManagerObjects).
const (
	servingCertificate = appName + "-serving" // inject-ca-from names it
	servingTLSSecret   = appName + "-tls"     // the Pods mount it, cert-manager writes it
)

// TestCertManagerModeIssuesInjectsAndRenewsInPlace deploys the stack with certificates.mode
// certManager under failurePolicy Fail, with cert-manager's real controller and CA injector
// (bin/cert-manager-controller, bin/cainjector, from tools/certmanager) running against the
// local cluster: `pulumi up` completes once cert-manager has issued the Secret the webhook Pods
// mount and the injector has filled caBundle; Pods of a selected namespace come back mutated. With Pods
// created in a loop, cert-manager renews the serving certificate (as `cmctl renew` asks): the
// running webhook processes serve the new certificate without a restart (the server's hot
// reload), and an up that changes the webhook configuration keeps the injected caBundle (with
// the injector stopped, so it cannot put it back); zero
// refused, zero unmutated. destroy leaves no cert-manager object behind.
func TestCertManagerModeIssuesInjectsAndRenewsInPlace(t *testing.T) {
	ctx := context.Background()
	kube := env.cluster.Client
	dyn, err := dynamic.NewForConfig(env.cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := certmanager.InstallCRDs(ctx, dyn, env.root); err != nil {
		t.Fatal(err)
	}
	controller := certmanager.Start(t, env.cluster, env.root, "cert-manager-controller")
	// Registered before the injector starts: the destroy runs while the controller still does.
	destroyAtEnd(t, func() { waitNamespaceGone(t, kube) })
	certs := dyn.Resource(certmanager.Resource("certificates")).Namespace(webhookNamespace)
	mwcs := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()

	// The up: the Deployment's Pods wait for the Secret cert-manager writes, and the up for them
	// and for caBundle. The CA injector starts only some seconds after the webhook configuration
	// exists: the up must still be waiting then, and return with caBundle filled, else Pods
	// would be refused under Fail for want of a caBundle.
	upDone := make(chan summary, 1)
	go func() {
		upDone <- deploy(t, "up", "--config", "certificates.mode=certManager", "--config", "failurePolicy=Fail")
	}()
	err = cluster.Wait(ctx, 3*time.Minute, func(ctx context.Context) error {
		_, err := mwcs.Get(ctx, webhookConfig, metav1.GetOptions{})
		return err
	}, controller)
	if err != nil {
		t.Fatalf("waiting for the up to create the webhook configuration: %v", err)
	}
	time.Sleep(3 * time.Second)
	select {
	case <-upDone:
		t.Fatal("the up returned with no CA injector running: it does not wait for caBundle")
	default:
	}
	injector := certmanager.Start(t, env.cluster, env.root, "cainjector")
	var s summary
	select {
	case s = <-upDone:
	case <-time.After(5 * time.Minute):
		t.Fatal("the up did not return within 5 minutes of the CA injector's start")
	}
	mwc, err := mwcs.Get(ctx, webhookConfig, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, check func() error) {
		t.Helper()
		if err := cluster.Wait(ctx, 2*time.Minute, func(context.Context) error { return check() }, controller, injector); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	readLastOutputs(t, s)
	for typ, want := range map[string]int{"kubernetes:cert-manager.io/v1:Issuer": 2, "kubernetes:cert-manager.io/v1:Certificate": 2} {
		if n := len(slices.DeleteFunc(stepsOf(s), func(st string) bool { return st != "create "+typ })); n != want {
			t.Errorf("steps %v create %d %s, want %d", stepsOf(s), n, typ, want)
		}
	}
	if slices.ContainsFunc(stepsOf(s), func(st string) bool {
		return strings.Contains(st, " tls:") || strings.HasSuffix(st, " kubernetes:core/v1:Secret")
	}) {
		t.Errorf("steps %v: pulumi-tls or a Secret of the stack's own in certManager mode", stepsOf(s))
	}
	st := currentStack(t, kube)
	if st.secret.Name != servingTLSSecret || st.secret.Annotations["cert-manager.io/certificate-name"] != servingCertificate {
		t.Fatalf("the Pods mount Secret %s (annotations %v), want %s written by cert-manager for Certificate %s",
			st.secret.Name, st.secret.Annotations, servingTLSSecret, servingCertificate)
	}
	if got, want := mwc.Annotations["cert-manager.io/inject-ca-from"], webhookNamespace+"/"+servingCertificate; got != want {
		t.Errorf("inject-ca-from = %q, want %q", got, want)
	}
	if p := mwc.Webhooks[0].FailurePolicy; p == nil || *p != "Fail" {
		t.Errorf("failurePolicy = %v, want Fail", p)
	}
	// The up returned only once the injector had filled caBundle (the pulumi.com/waitFor
	// annotation): no window in which Pods are refused under Fail for want of a caBundle.
	ca := certsOf(t, string(st.secret.Data["ca.crt"]))
	if got := mwc.Webhooks[0].ClientConfig.CABundle; len(got) == 0 || !slices.EqualFunc(certsOf(t, string(got)), ca, bytes.Equal) {
		t.Errorf("when the up returned, caBundle was %q, want the Secret's CA", got)
	}
	checkServedCertificates(t, kube, st)
	// Nothing left to do: the custom resources share the typed resources' provider
	// (certs_certmanager.go newCustomResource), so no second default provider is deleted.
	if again := deploy(t, "preview", "--expect-no-changes"); len(again.Steps) != 0 {
		t.Errorf("the preview after the install has steps %v", stepsOf(again))
	}

	load, steady := steadyLoad(t, kube, "e2e-certmanager")

	// Renewal: a new key and certificate in the same Secret, under the same CA; the processes
	// that serve the Pods must pick it up themselves.
	renewing := &phaseCounts{name: "cert-manager renews (hot reload)"}
	load.next(renewing)
	pods := webhookPodStates(t, kube)
	d := st.deployment
	requested := time.Now()
	if err := certmanager.RequestRenewal(ctx, certs, servingCertificate); err != nil {
		t.Fatalf("request the renewal of Certificate %s: %v", servingCertificate, err)
	}
	waitFor("cert-manager to issue revision 2 of "+servingCertificate, func() error {
		return certmanager.Issued(ctx, certs, servingCertificate, 2)
	})
	renewed := currentStack(t, kube)
	if bytes.Equal(renewed.cert.Raw, st.cert.Raw) || bytes.Equal(renewed.secret.Data[corev1.TLSPrivateKeyKey], st.secret.Data[corev1.TLSPrivateKeyKey]) {
		t.Fatal("the renewal left the Secret's certificate or key as it was")
	}
	if !bytes.Equal(renewed.secret.Data["ca.crt"], st.secret.Data["ca.crt"]) {
		t.Error("a serving renewal changed the CA")
	}
	checkServedCertificates(t, kube, renewed)
	t.Logf("both webhook Pods serve the renewed certificate %v after the request", time.Since(requested).Round(time.Millisecond))
	if got := webhookPodStates(t, kube); !slices.Equal(got, pods) {
		t.Errorf("the webhook Pods were replaced or restarted: before %v, after %v", pods, got)
	}
	if renewed.deployment.Generation != d.Generation {
		t.Errorf("the Deployment went from generation %d to %d: the renewal rolled it", d.Generation, renewed.deployment.Generation)
	}

	// An up that changes the webhook configuration, after reading the cluster (the injected
	// caBundle, cert-manager's status), must leave the injector's caBundle alone. The injector is
	// stopped first, so it cannot put back what the up would clear.
	if st := injector.Stop(30 * time.Second); st == nil || !st.Success() {
		t.Errorf("cainjector did not stop cleanly on SIGTERM: %v", st)
	}
	updating := &phaseCounts{name: "up --refresh changes the config"}
	load.next(updating)
	s = deploy(t, "up", "--refresh", "--config", "timeoutSeconds=9")
	readLastOutputs(t, s)
	if got := stepsOf(s); !slices.Equal(got, []string{"update " + mwcType}) {
		t.Errorf("steps %v, want only the webhook configuration updated", got)
	}
	if got := bundleOf(t, kube); !slices.EqualFunc(got, ca, bytes.Equal) {
		t.Errorf("after an up that updated the webhook configuration caBundle holds %d certificates, want the injected CA", len(got))
	}

	load.settle(t, steady, renewing, updating)

	// destroy: the namespace goes with the Secrets cert-manager wrote and the CertificateRequests
	// it made; no cert-manager object is left anywhere.
	deploy(t, "destroy")
	waitNamespaceGone(t, kube)
	for _, resource := range []string{"certificates", "certificaterequests", "issuers"} {
		l, err := dyn.Resource(certmanager.Resource(resource)).List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 0 {
			t.Errorf("%s left after destroy: %d (%v)", resource, len(l.Items), err)
		}
	}
	secrets, err := kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range secrets.Items {
		if sec.Annotations["cert-manager.io/certificate-name"] != "" {
			t.Errorf("Secret %s/%s of cert-manager left after destroy", sec.Namespace, sec.Name)
		}
	}
	if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("MutatingWebhookConfiguration after destroy: %v", err)
	}
}

// webhookPodStates describes each webhook Pod by name, UID, restarts and when its process
// started (the workload runner's container status), sorted: equal lists mean the same
// processes still run.
func webhookPodStates(t *testing.T, kube kubernetes.Interface) []string {
	t.Helper()
	var out []string
	for _, p := range mustListWebhookPods(t, kube) {
		state := p.Name + " " + string(p.UID)
		for _, c := range p.Status.ContainerStatuses {
			state += fmt.Sprintf(" restarts=%d", c.RestartCount)
			if c.State.Running != nil {
				state += " started=" + c.State.Running.StartedAt.UTC().Format(time.RFC3339)
			}
		}
		out = append(out, state)
	}
	slices.Sort(out)
	return out
}
