package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/ai-webhook/ai-webhook/infra/webhookstack"
	"github.com/ai-webhook/ai-webhook/test/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/testpki"
)

// certManagerCRDs returns cert-manager's CRD files (deploy/crds of the
// github.com/cert-manager/cert-manager module that tools/certmanager pins), which `make tools`
// copies into bin/cert-manager-crds.
func certManagerCRDs(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join(os.Getenv(envRepoRoot), "bin", "cert-manager-crds")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cert-manager CRDs in %s (%v): run `make tools` (or `make certmanager-tools`)", dir, err)
	}
	return files
}

// installCertManagerCRDs creates cert-manager's CRDs (once per cluster), waits until each is
// established, and returns the dynamic client the tests create cert-manager objects with.
func installCertManagerCRDs(t *testing.T) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(fx.cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	installCRDs(t, dyn, certManagerCRDs(t))
	return dyn
}

// The cert-manager objects of the stack's certManager mode are accepted by cert-manager's own
// CRDs (strict field validation, so a misspelt field is an error, not silently pruned) and are
// wired: the serving Certificate writes the Secret the Pods mount, for the names the API server
// dials, issued by the CA Issuer the stack creates, whose CA Secret is the CA Certificate's; the
// webhook configuration's inject-ca-from names it. cert-manager's controller does not run here
// (README, "Certificates"): nothing is issued; its CA injector runs in the test below.
func TestCertManagerObjectsAreAcceptedAndWired(t *testing.T) {
	requireControlPlane(t)
	ctx := context.Background()
	dyn := installCertManagerCRDs(t)
	ns := newNamespace(t, nil)

	cfg := webhookstack.Config{
		Name: "ai-webhook", Namespace: ns,
		CAValidityHours: 87600, CertValidityHours: 2160, EarlyRenewalHours: 720,
		Certificates: webhookstack.Certificates{Mode: webhookstack.CertModeCertManager},
	}
	stored := createCertManagerObjects(t, dyn, cfg)

	// Strict validation is on: a field the CRD does not know is refused.
	typo := map[string]any{"secretName": "x", "issuerRef": map[string]any{"name": "x"}, "dnsName": []any{"x"}}
	if _, err := createStrict(ctx, dyn, "cert-manager.io/v1", "Certificate", ns, "typo", nil, typo); err == nil || !strings.Contains(err.Error(), "dnsName") {
		t.Errorf("a Certificate with the unknown field dnsName: err = %v, want it refused", err)
	}

	// Wired, read back as the API server stored it.
	ref, found := strings.CutPrefix(webhookstack.InjectCAFrom(cfg), ns+"/")
	if !found {
		t.Fatalf("inject-ca-from %q is not in namespace %s", webhookstack.InjectCAFrom(cfg), ns)
	}
	serving, ok := stored["Certificate/"+ref]
	if !ok {
		t.Fatalf("inject-ca-from names Certificate %q, which the stack does not create (created: %v)", ref, keys(stored))
	}
	str := func(u *unstructured.Unstructured, path ...string) string {
		s, _, _ := unstructured.NestedString(u.Object, path...)
		return s
	}
	if got, want := str(serving, "spec", "secretName"), webhookstack.ServingSecretName(cfg); got != want {
		t.Errorf("serving Certificate writes Secret %q, the Pods mount %q", got, want)
	}
	dnsNames, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	if want := webhookServerNameIn(cfg.Name, ns); !slices.Contains(dnsNames, want) {
		t.Errorf("serving Certificate dnsNames %v lack %s, the name the API server dials", dnsNames, want)
	}
	issuer, ok := stored["Issuer/"+str(serving, "spec", "issuerRef", "name")]
	if !ok || str(serving, "spec", "issuerRef", "kind") != "Issuer" {
		t.Fatalf("serving Certificate's issuerRef %v is not an Issuer the stack creates", serving.Object["spec"])
	}
	caSecret := str(issuer, "spec", "ca", "secretName")
	var caCert *unstructured.Unstructured
	for key, u := range stored {
		if strings.HasPrefix(key, "Certificate/") && str(u, "spec", "secretName") == caSecret {
			caCert = u
		}
	}
	if caCert == nil {
		t.Fatalf("the CA Issuer reads Secret %q, which no Certificate of the stack writes", caSecret)
	}
	if isCA, _, _ := unstructured.NestedBool(caCert.Object, "spec", "isCA"); !isCA {
		t.Errorf("Certificate %s behind the CA Issuer is not a CA", caCert.GetName())
	}
	if self, ok := stored["Issuer/"+str(caCert, "spec", "issuerRef", "name")]; !ok || self.Object["spec"].(map[string]any)["selfSigned"] == nil {
		t.Errorf("the CA Certificate is not issued by a self-signed Issuer of the stack: issuerRef %v", caCert.Object["spec"])
	}
	if got := str(serving, "spec", "renewBefore"); got != "720h0m0s" && got != "720h" {
		t.Errorf("renewBefore stored as %q, want 720h", got)
	}
}

// createCertManagerObjects creates the cert-manager objects the stack renders for cfg, with
// strict field validation, and returns them as stored, by kind/name.
func createCertManagerObjects(t *testing.T, dyn dynamic.Interface, cfg webhookstack.Config) map[string]*unstructured.Unstructured {
	t.Helper()
	stored := map[string]*unstructured.Unstructured{}
	for _, obj := range webhookstack.CertManagerObjects(cfg) {
		got, err := createStrict(context.Background(), dyn, obj.APIVersion(), obj.Kind, cfg.Namespace, obj.Name, nil, obj.Spec)
		if err != nil {
			t.Fatalf("the API server refused %s %s: %v", obj.Kind, obj.Name, err)
		}
		stored[obj.Kind+"/"+obj.Name] = got
	}
	return stored
}

func webhookServerNameIn(service, ns string) string { return service + "." + ns + ".svc" }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// cert-manager's real CA injector (bin/cainjector: the reconcilers of the cert-manager module,
// tools/certmanager) fills the caBundle of a webhook configuration carrying the stack's
// inject-ca-from annotation from the serving Certificate's Secret, and follows that Secret when
// a renewal brings another CA. cert-manager's controller does not run (README, "Certificates"):
// the test writes the Secret as the controller does after issuing (with its
// cert-manager.io/certificate-name annotation, which the injector requires).
func TestCertManagerCAInjectorFillsTheStacksCABundle(t *testing.T) {
	requireControlPlane(t)
	ctx := context.Background()
	bin := filepath.Join(os.Getenv(envRepoRoot), "bin", "cainjector")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: run `make tools` (or `make certmanager-tools`)", err)
	}
	dyn := installCertManagerCRDs(t)
	ns := newNamespace(t, nil)
	cfg := webhookstack.Config{
		Name: "ai-webhook", Namespace: ns,
		CAValidityHours: 87600, CertValidityHours: 8760, EarlyRenewalHours: 5880,
		Certificates: webhookstack.Certificates{Mode: webhookstack.CertModeCertManager},
	}
	createCertManagerObjects(t, dyn, cfg)

	// The configuration as the stack makes it in certManager mode: the annotation, no caBundle.
	// It selects no namespace, so it never takes part in another test's admissions.
	none := admissionregistrationv1.SideEffectClassNone
	ignore := admissionregistrationv1.Ignore
	mwc, err := fx.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "cainjector-test-", Annotations: map[string]string{
			webhookstack.InjectCAFromAnnotation: webhookstack.InjectCAFrom(cfg),
		}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "cainjector.test.example.com",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: cfg.Name}},
			SideEffects:             &none,
			FailurePolicy:           &ignore,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"cainjector-test": "no-namespace-has-this"}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = fx.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), mwc.Name, metav1.DeleteOptions{})
	})

	injector, err := fx.cluster.Run(bin, "--kubeconfig="+fx.cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		injector.Stop(5 * time.Second)
		if t.Failed() {
			if log, err := os.ReadFile(injector.Log); err == nil {
				t.Logf("cainjector log:\n%s", log)
			}
		}
	})

	bundle := func() (string, error) {
		got, err := fx.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwc.Name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return string(got.Webhooks[0].ClientConfig.CABundle), injector.Failure()
	}
	// Nothing to inject before the Secret exists.
	time.Sleep(2 * time.Second)
	if got, err := bundle(); err != nil || got != "" {
		t.Fatalf("caBundle before the Secret exists: %q (%v), want none", got, err)
	}

	secrets := fx.client.CoreV1().Secrets(ns)
	issue := func(name string) []byte {
		t.Helper()
		ca, err := testpki.NewCA(name, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := ca.Serving(webhookServerNameIn(cfg.Name, ns), webhookstack.ServiceDNSNames(cfg.Name, ns)...)
		if err != nil {
			t.Fatal(err)
		}
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: webhookstack.ServingSecretName(cfg), Annotations: map[string]string{
				"cert-manager.io/certificate-name": webhookstack.ServingCertificateName(cfg),
			}},
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM, "ca.crt": ca.CertPEM},
		}
		if _, err := secrets.Get(ctx, secret.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			_, err = secrets.Create(ctx, secret, metav1.CreateOptions{})
		} else if err == nil {
			_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		return ca.CertPEM
	}
	// The first issuance: caBundle is its CA. A renewal under another CA: the injector adds the
	// new CA and keeps the old one until it expires (cert-manager's CAInjectorMerging, GA and on
	// by default), so Pods still serving the old Secret's certificate stay trusted while the
	// kubelet and the server's hot reload catch up.
	first := issue("first-ca")
	waitBundle := func(what string, want []byte) {
		t.Helper()
		cluster.Eventually(t, 30*time.Second, "the CA injector to make caBundle "+what, func() error {
			got, err := bundle()
			if err != nil {
				return err
			}
			if got != string(want) {
				return fmt.Errorf("caBundle %q", got)
			}
			return nil
		})
	}
	waitBundle("the first CA", first)
	second := issue("renewed-under-a-new-ca")
	waitBundle("the first and the new CA", append(bytes.Clone(first), second...))
}
