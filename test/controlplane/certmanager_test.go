package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/infra/webhookstack"
	"github.com/ai-webhook/ai-webhook/test/internal/certmanager"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/testpki"
)

// certManagerTest starts a cert-manager test: it creates cert-manager's CRDs (once per
// cluster) and waits until each is established, and returns the dynamic client the test
// creates cert-manager objects with and the stack's certManager-mode configuration in a
// namespace of the test's own.
func certManagerTest(t *testing.T) (dynamic.Interface, webhookstack.Config) {
	t.Helper()
	requireControlPlane(t)
	dyn, err := dynamic.NewForConfig(fx.cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := certmanager.InstallCRDs(context.Background(), dyn, os.Getenv(envRepoRoot)); err != nil {
		t.Fatal(err)
	}
	return dyn, certManagerConfig(newNamespace(t, nil))
}

// The cert-manager objects of the stack's certManager mode are accepted by cert-manager's own
// CRDs (strict field validation, so a misspelt field is an error, not silently pruned) and are
// wired: the serving Certificate writes the Secret the Pods mount, for the names the API server
// dials, issued by the CA Issuer the stack creates, whose CA Secret is the CA Certificate's; the
// webhook configuration's inject-ca-from names it. Nothing is issued here: cert-manager's
// controller and CA injector run in the test below.
func TestCertManagerObjectsAreAcceptedAndWired(t *testing.T) {
	ctx := context.Background()
	dyn, cfg := certManagerTest(t)
	ns := cfg.Namespace
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
		t.Fatalf("inject-ca-from names Certificate %q, which the stack does not create (created: %v)", ref, slices.Sorted(maps.Keys(stored)))
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

// certManagerConfig is the stack's configuration in certManager mode, installed in ns.
func certManagerConfig(ns string) webhookstack.Config {
	return webhookstack.Config{
		Name: "ai-webhook", Namespace: ns,
		CAValidityHours: 87600, CertValidityHours: 2160, EarlyRenewalHours: 720,
		Certificates: webhookstack.Certificates{Mode: webhookstack.CertModeCertManager},
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

// cert-manager's real controller (bin/cert-manager-controller: the issuance loops of the
// cert-manager module, tools/certmanager) issues the stack's CA and serving certificate from
// the objects of certManager mode into the Secret the Pods mount, and its real CA injector
// (bin/cainjector) fills the webhook configuration's caBundle with that CA. A renewal (what
// `cmctl renew` asks for) brings a new serving key and certificate under the same CA, the
// bundle unchanged; a CA renewal followed by a serving renewal leaves old and new CA in the
// bundle (cert-manager's CAInjectorMerging), so a Pod still serving the old certificate stays
// trusted while the kubelet and the server's hot reload catch up. At each step the API server
// calls a webhook of the test's own behind the stack's Service that serves the issued Secret,
// trusting only the injected caBundle.
func TestCertManagerIssuesRotatesAndInjectsTheStacksCertificates(t *testing.T) {
	ctx := context.Background()
	dyn, cfg := certManagerTest(t)
	ns := cfg.Namespace
	mwc := createInjectTarget(t, cfg)
	serving := serveAdmissionForTest(t, cfg, certManagerTestAddress, certManagerTestPort)
	controller := certmanager.Start(t, fx.cluster, os.Getenv(envRepoRoot), "cert-manager-controller")
	injector := certmanager.Start(t, fx.cluster, os.Getenv(envRepoRoot), "cainjector")
	// Two minutes: a failed issuance step is retried by cert-manager's rate limiter after 5,
	// 10, 20 s; the wait costs time only when something is broken.
	waitFor := func(what string, check func() error) {
		t.Helper()
		if err := cluster.Wait(ctx, 2*time.Minute, func(context.Context) error { return check() }, controller, injector); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	bundle := func() ([]*x509.Certificate, error) {
		got, err := fx.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwc, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return certutil.ParseCertsPEM(got.Webhooks[0].ClientConfig.CABundle)
	}

	createCertManagerObjects(t, dyn, cfg)
	caName := cfg.Name + "-ca" // the CA Certificate and its Secret, behind the CA Issuer
	servingName := webhookstack.ServingCertificateName(cfg)
	certs := dyn.Resource(certmanager.Resource("certificates")).Namespace(ns)
	renew := func(name string) {
		t.Helper()
		if err := certmanager.RequestRenewal(ctx, certs, name); err != nil {
			t.Fatalf("request the renewal of Certificate %s: %v", name, err)
		}
	}

	// issued waits until Certificate name is Ready at revision and returns its Secret's contents.
	issued := func(name, secretName string, revision int64) issuedSecret {
		t.Helper()
		var got issuedSecret
		waitFor(fmt.Sprintf("cert-manager to issue Certificate %s (revision %d)", name, revision), func() error {
			if err := certmanager.Issued(ctx, certs, name, revision); err != nil {
				return err
			}
			secret, err := fx.client.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			got, err = readIssuedSecret(secret)
			return err
		})
		return got
	}

	// Issuance: the self-signed CA, then the serving certificate under it.
	ca := issued(caName, caName, 1)
	if !ca.leaf.IsCA || ca.leaf.CheckSignatureFrom(ca.leaf) != nil {
		t.Errorf("the CA Secret holds %q (isCA %v), want a self-signed CA", ca.leaf.Subject, ca.leaf.IsCA)
	}
	checkLifetime(t, "the CA", ca.leaf, cfg.CAValidityHours)
	first := issued(servingName, webhookstack.ServingSecretName(cfg), 1)
	if !first.ca.Equal(ca.leaf) {
		t.Errorf("the serving Secret's ca.crt is %q (serial %v), not the CA the stack's Certificate issued", first.ca.Subject, first.ca.SerialNumber)
	}
	checkServing(t, first, cfg)

	// Injection: caBundle is that CA.
	waitFor("the CA injector to put the issued CA in caBundle", func() error {
		return sameCerts(bundle, first.ca)
	})

	// The API server calls through the Service, checking the issued certificate against the
	// injected bundle. Once such a call succeeded (so the API server holds that bundle), a
	// certificate from another CA is refused (the policy is Fail).
	serving.mustServe(t, first, ns)
	// NewCA's validity starts an hour ago: a day keeps the certificate valid, so only its CA
	// can get it refused.
	other, err := testpki.NewCA("not-the-issued-ca", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Serving(webhookServerNameIn(cfg.Name, ns), webhookServerNameIn(cfg.Name, ns))
	if err != nil {
		t.Fatal(err)
	}
	serving.serve(t, stranger.CertPEM, stranger.KeyPEM)
	if _, err := serving.call(ns); err == nil || !strings.Contains(err.Error(), "x509: certificate signed by unknown authority") {
		t.Errorf("a call to a server whose certificate another CA signed: %v, want it refused for its unknown CA", err)
	}

	// Renewal, as `cmctl renew` asks for it: a new key (rotationPolicy Always) and certificate
	// under the same CA; the bundle stays.
	renew(servingName)
	renewed := issued(servingName, webhookstack.ServingSecretName(cfg), 2)
	if renewed.leaf.Equal(first.leaf) {
		t.Fatalf("the renewal left the Secret's certificate as it was (serial %v)", renewed.leaf.SerialNumber)
	}
	if bytes.Equal(renewed.keyPEM, first.keyPEM) {
		t.Error("the renewal kept the private key; the Certificate's rotationPolicy is Always")
	}
	checkServing(t, renewed, cfg)
	if !renewed.ca.Equal(first.ca) {
		t.Errorf("a serving renewal changed ca.crt")
	}
	if err := sameCerts(bundle, first.ca); err != nil {
		t.Errorf("after a serving renewal: %v, want the one CA", err)
	}
	serving.mustServe(t, renewed, ns)
	// Again once the renewed certificate served a call, giving the injector time to react.
	if err := sameCerts(bundle, first.ca); err != nil {
		t.Errorf("after a serving renewal, once the renewed certificate served: %v, want the one CA", err)
	}

	// CA rotation: the CA renewed, then the serving certificate under the new CA. The injector
	// keeps the old CA beside the new one, so both the certificate a Pod may still serve and
	// the new one verify against caBundle.
	renew(caName)
	newCA := issued(caName, caName, 2)
	if newCA.leaf.Equal(ca.leaf) {
		t.Fatal("the CA renewal left the CA Secret as it was")
	}
	renew(servingName)
	underNewCA := issued(servingName, webhookstack.ServingSecretName(cfg), 3)
	if !underNewCA.ca.Equal(newCA.leaf) {
		t.Errorf("after the CA renewal the serving Secret's ca.crt has serial %v, want the new CA's %v", underNewCA.ca.SerialNumber, newCA.leaf.SerialNumber)
	}
	checkServing(t, underNewCA, cfg)
	waitFor("the CA injector to carry the old and the new CA in caBundle", func() error {
		return sameCerts(bundle, ca.leaf, newCA.leaf)
	})
	// A Pod still serving the certificate issued under the old CA, and one serving the new.
	serving.mustServe(t, renewed, ns)
	serving.mustServe(t, underNewCA, ns)

	// Renewals do not pile up: cert-manager's revision manager keeps the last CertificateRequest
	// of each Certificate (revisionHistoryLimit unset: 1) and deletes the others.
	requests := dyn.Resource(certmanager.Resource("certificaterequests")).Namespace(ns)
	waitFor("the revision manager to keep one CertificateRequest of "+servingName, func() error {
		list, err := requests.List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var revisions []string
		for _, cr := range list.Items {
			if cr.GetAnnotations()["cert-manager.io/certificate-name"] == servingName {
				revisions = append(revisions, cr.GetAnnotations()["cert-manager.io/certificate-revision"])
			}
		}
		if !slices.Equal(revisions, []string{"3"}) {
			return fmt.Errorf("CertificateRequests of revisions %v, want only 3", revisions)
		}
		return nil
	})
}

// createInjectTarget creates a webhook configuration as the stack makes it in certManager mode
// (the inject-ca-from annotation, no caBundle, the stack's Service) and returns its name. It is
// called only for ConfigMaps labelled certManagerCallLabel in cfg.Namespace, so it never takes
// part in another test's admissions; its policy is Fail, so a failed call refuses the create.
func createInjectTarget(t *testing.T, cfg webhookstack.Config) string {
	t.Helper()
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	mwcs := fx.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := mwcs.Create(context.Background(), &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "cainjector-test-", Annotations: map[string]string{
			webhookstack.InjectCAFromAnnotation: webhookstack.InjectCAFrom(cfg),
		}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "cainjector.test.example.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: cfg.Namespace, Name: cfg.Name, Path: ptr.To("/mutate"), Port: ptr.To[int32](443),
			}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
			}},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: cfg.Namespace}},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{certManagerCallLabel: "true"}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mwcs.Delete(context.Background(), mwc.Name, metav1.DeleteOptions{}) })
	return mwc.Name
}

// issuedSecret is what cert-manager wrote into a Certificate's Secret.
type issuedSecret struct {
	leaf           *x509.Certificate // tls.crt's first certificate
	ca             *x509.Certificate // ca.crt
	certPEM        []byte
	keyPEM         []byte
	certificateFor string // its cert-manager.io/certificate-name annotation
}

func readIssuedSecret(s *corev1.Secret) (issuedSecret, error) {
	chain, err := certutil.ParseCertsPEM(s.Data[corev1.TLSCertKey])
	if err != nil || len(chain) == 0 {
		return issuedSecret{}, fmt.Errorf("Secret %s: tls.crt: %d certificates, %v", s.Name, len(chain), err)
	}
	cas, err := certutil.ParseCertsPEM(s.Data["ca.crt"])
	if err != nil || len(cas) != 1 {
		return issuedSecret{}, fmt.Errorf("Secret %s: ca.crt: %d certificates, %v", s.Name, len(cas), err)
	}
	if _, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
		return issuedSecret{}, fmt.Errorf("Secret %s: tls.crt and tls.key: %v", s.Name, err)
	}
	return issuedSecret{leaf: chain[0], ca: cas[0], certPEM: s.Data[corev1.TLSCertKey], keyPEM: s.Data[corev1.TLSPrivateKeyKey],
		certificateFor: s.Annotations["cert-manager.io/certificate-name"]}, nil
}

// checkServing: the serving certificate chains to the Secret's ca.crt for every name the API
// server may check, for server auth, and lives as long as the stack configures.
func checkServing(t *testing.T, s issuedSecret, cfg webhookstack.Config) {
	t.Helper()
	if err := verifyServing(s, []*x509.Certificate{s.ca}, webhookstack.ServiceDNSNames(cfg.Name, cfg.Namespace)...); err != nil {
		t.Error(err)
	}
	checkLifetime(t, "the serving certificate", s.leaf, cfg.CertValidityHours)
	if want := webhookstack.ServingCertificateName(cfg); s.certificateFor != want {
		t.Errorf("the serving Secret is annotated as Certificate %q's, want %q", s.certificateFor, want)
	}
}

func verifyServing(s issuedSecret, roots []*x509.Certificate, names ...string) error {
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, name := range names {
		if _, err := s.leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("serving certificate for %s: %w", name, err)
		}
	}
	return nil
}

// checkLifetime: cert-manager issues for exactly the Certificate's duration.
func checkLifetime(t *testing.T, what string, c *x509.Certificate, hours int) {
	t.Helper()
	if got, want := c.NotAfter.Sub(c.NotBefore), time.Duration(hours)*time.Hour; got != want {
		t.Errorf("%s is valid for %v, the stack configures %v", what, got, want)
	}
}

// sameCerts: get returns exactly want, in order.
func sameCerts(get func() ([]*x509.Certificate, error), want ...*x509.Certificate) error {
	got, err := get()
	if err != nil {
		return err
	}
	if !slices.EqualFunc(got, want, (*x509.Certificate).Equal) {
		serials := func(cs []*x509.Certificate) []string {
			var out []string
			for _, c := range cs {
				out = append(out, c.Subject.CommonName+"#"+c.SerialNumber.String())
			}
			return out
		}
		return fmt.Errorf("caBundle holds %v, want %v", serials(got), serials(want))
	}
	return nil
}

const (
	certManagerTestAddress = "10.250.0.15"
	certManagerTestPort    = 9446
	certManagerCallLabel   = "certmanager-test/call"
	servedByAnnotation     = "certmanager-test/served-by"
)

// admissionForTest is an admission webhook of the test's own, exposed as the stack's Service,
// serving whichever certificate the test gives it. Keep-alive is off: every call is a new TLS
// handshake, which checks the certificate served now against the caBundle the API server holds.
type admissionForTest struct {
	pair atomic.Pointer[tls.Certificate]
}

func serveAdmissionForTest(t *testing.T, cfg webhookstack.Config, ip string, port int32) *admissionForTest {
	t.Helper()
	a := &admissionForTest{}
	mux := http.NewServeMux()
	// Every ConfigMap gets an annotation naming the serial of the certificate that served it.
	mux.HandleFunc("POST /mutate", func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad AdmissionReview", http.StatusBadRequest)
			return
		}
		patch, _ := json.Marshal([]map[string]any{{"op": "add", "path": "/metadata/annotations",
			"value": map[string]string{servedByAnnotation: a.pair.Load().Leaf.SerialNumber.String()}}})
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true,
			Patch: patch, PatchType: ptr.To(admissionv1.PatchTypeJSONPatch)}
		review.Request = nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review)
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(int(port))))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, TLSConfig: &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return a.pair.Load(), nil },
	}}
	srv.SetKeepAlivesEnabled(false)
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })

	if err := exposeService(context.Background(), fx.client, cfg.Namespace, cfg.Name, ip, port); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *admissionForTest) serve(t *testing.T, certPEM, keyPEM []byte) {
	t.Helper()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	a.pair.Store(&pair)
}

// call creates a ConfigMap the webhook configuration selects and returns the serial of the
// certificate that served the API server's call.
func (a *admissionForTest) call(ns string) (string, error) {
	cm, err := fx.client.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "call-", Labels: map[string]string{certManagerCallLabel: "true"}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return cm.Annotations[servedByAnnotation], nil
}

// mustServe serves s's certificate and key and checks that the API server's call reaches it.
// It calls until a call succeeds, for up to 30 s: the API server takes up a changed webhook
// configuration (its caBundle) a little after it is stored.
func (a *admissionForTest) mustServe(t *testing.T, s issuedSecret, ns string) {
	t.Helper()
	a.serve(t, s.certPEM, s.keyPEM)
	var got string
	cluster.Eventually(t, 30*time.Second, fmt.Sprintf("the API server's call to the webhook serving the issued certificate (serial %v)", s.leaf.SerialNumber), func() (err error) {
		got, err = a.call(ns)
		return err
	})
	if got != s.leaf.SerialNumber.String() {
		t.Fatalf("the call was served by the certificate of serial %q, want %v", got, s.leaf.SerialNumber)
	}
}
