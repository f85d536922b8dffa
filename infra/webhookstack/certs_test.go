package webhookstack

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const (
	typeIssuer      = "kubernetes:cert-manager.io/v1:Issuer"
	typeCertificate = "kubernetes:cert-manager.io/v1:Certificate"
)

// testCAPEM is a CA certificate for the secret mode (from the mock's issuer, so it parses).
func testCAPEM(t *testing.T) string {
	t.Helper()
	return secretData(t, mustRun(t, nil).one(t, typeSecret).Inputs, "ca.crt")
}

func TestCertificatesConfigErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		want   string
	}{
		{"unknown mode", `{"mode":"certmanager"}`, `ai-webhook:certificates.mode must be "pulumi", "certManager" or "secret", got "certmanager"`},
		{"typo in a field", `{"mode":"secret","secret":"x"}`, `ai-webhook:certificates must be a JSON object matching the documented shape: json: unknown field "secret"`},
		{"secret without a Secret", `{"mode":"secret","caBundle":"x"}`, `ai-webhook:certificates.secretName must name a kubernetes.io/tls Secret`},
		{"secret without a bundle", `{"mode":"secret","secretName":"tls"}`, `ai-webhook:certificates.caBundle must be the PEM of the CA certificate(s) behind the Secret's certificate: no PEM certificate found`},
		{"bundle that is no PEM", `{"mode":"secret","secretName":"tls","caBundle":"not a certificate"}`, `ai-webhook:certificates.caBundle must be the PEM`},
		{"secretName outside secret mode", `{"mode":"pulumi","secretName":"tls"}`, `ai-webhook:certificates.secretName is used only with mode "secret", got mode "pulumi"`},
		{"issuerRef outside certManager mode", `{"mode":"secret","secretName":"tls","issuerRef":{"name":"ca"}}`, `ai-webhook:certificates.issuerRef is used only with mode "certManager", got mode "secret"`},
		{"issuerRef of a wrong kind", `{"mode":"certManager","issuerRef":{"name":"ca","kind":"Vault"}}`, `ai-webhook:certificates.issuerRef.kind must be "Issuer" or "ClusterIssuer", got "Vault"`},
		{"issuerRef without a name", `{"mode":"certManager","issuerRef":{"kind":"ClusterIssuer"}}`, `ai-webhook:certificates.issuerRef.name must name an Issuer or ClusterIssuer, got ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := run(t, map[string]string{"certificates": tt.config})
			if err == nil {
				t.Fatalf("certificates %s was accepted", tt.config)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error\n%v\ndoes not contain\n%s", err, tt.want)
			}
		})
	}
}

// A bundle with something that is not a CA certificate is refused: the API server would take it
// and then fail every call.
func TestSecretModeRefusesABundleOfServingCertificates(t *testing.T) {
	t.Parallel()
	leaf := secretData(t, mustRun(t, nil).one(t, typeSecret).Inputs, "tls.crt")
	_, err := run(t, map[string]string{"certificates": jsonObject(t, map[string]any{"mode": "secret", "secretName": "tls", "caBundle": leaf})})
	if err == nil || !strings.Contains(err.Error(), "is not a CA certificate") {
		t.Fatalf("a serving certificate as caBundle: err = %v", err)
	}
}

func TestCertManagerModeIssuesThroughCertManagerAndLeavesCABundleToItsInjector(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{"certificates": `{"mode":"certManager"}`, "namespace": "platform"})
	for _, typ := range []string{typePrivateKey, typeSelfSignedCert, typeCertRequest, typeLocallySignedCert, typeSecret} {
		if n := len(res.byType(typ)); n != 0 {
			t.Errorf("certManager mode created %d %s", n, typ)
		}
	}
	issuers, certs := res.byType(typeIssuer), res.byType(typeCertificate)
	if len(issuers) != 2 || len(certs) != 2 {
		t.Fatalf("want a self-signed and a CA Issuer and two Certificates, got %d Issuers, %d Certificates", len(issuers), len(certs))
	}
	var serving registered
	for _, c := range certs {
		if get(c.Inputs, "spec.isCA") == true {
			want(t, "CA issuerRef", str(c.Inputs, "spec.issuerRef.name"), "ai-webhook-selfsigned")
			continue
		}
		serving = c
	}
	in := serving.Inputs
	want(t, "apiVersion", str(in, "apiVersion"), "cert-manager.io/v1")
	want(t, "issuerRef", get(in, "spec.issuerRef"), map[string]any{"name": "ai-webhook-ca", "kind": "Issuer", "group": "cert-manager.io"})
	want(t, "duration", str(in, "spec.duration"), "8760h")
	want(t, "renewBefore", str(in, "spec.renewBefore"), "5880h")
	want(t, "privateKey", get(in, "spec.privateKey"), map[string]any{"algorithm": "ECDSA", "size": 256.0, "rotationPolicy": "Always"})

	// Wired: the Pods mount the Secret cert-manager writes, the certificate names the Service the
	// API server dials, and the injector is pointed at this Certificate.
	pod := get(res.one(t, typeDeployment).Inputs, "spec.template.spec")
	want(t, "Deployment's TLS volume", str(pod, "volumes.0.secret.secretName"), str(in, "spec.secretName"))
	mwc := res.one(t, typeMWC).Inputs
	svc := get(mwc, "webhooks.0.clientConfig.service")
	want(t, "dnsNames", strs(in, "spec.dnsNames"), ServiceDNSNames(str(svc, "name"), str(svc, "namespace")))
	want(t, "inject-ca-from", str(mwc, "metadata.annotations.cert-manager\\.io/inject-ca-from"), "platform/"+str(in, "metadata.name"))
	if b := get(mwc, "webhooks.0.clientConfig.caBundle"); b != nil {
		t.Errorf("caBundle = %v, want none (the CA injector fills it)", b)
	}
	// ... and the up waits for it: a webhook with no caBundle under Fail refuses every Pod.
	want(t, "waitFor", str(mwc, "metadata.annotations.pulumi\\.com/waitFor"), "jsonpath={.webhooks[0].clientConfig.caBundle}")
	// The Deployment comes after the Certificate: its Pods need the Secret.
	dep := res.one(t, typeDeployment)
	if !slices.ContainsFunc(dep.Dependencies, func(urn string) bool { return strings.HasSuffix(urn, "::"+serving.Name) }) {
		t.Errorf("the Deployment does not depend on the serving Certificate; dependencies %v", dep.Dependencies)
	}
	// What Pulumi registers is what CertManagerObjects renders (the control-plane test applies that).
	cfg := defaultConfig()
	cfg.Namespace, cfg.Certificates.Mode = "platform", CertModeCertManager
	for _, obj := range CertManagerObjects(cfg) {
		found := false
		for _, r := range slices.Concat(issuers, certs) {
			if str(r.Inputs, "metadata.name") == obj.Name && str(r.Inputs, "kind") == obj.Kind {
				found = true
				want(t, obj.Kind+" "+obj.Name+" spec", get(r.Inputs, "spec"), roundTrip(t, obj.Spec))
			}
		}
		if !found {
			t.Errorf("%s %s is rendered but not registered", obj.Kind, obj.Name)
		}
	}
}

func TestCertManagerModeWithAnIssuerRefCreatesOnlyTheServingCertificate(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{"certificates": `{"mode":"certManager","issuerRef":{"name":"corp-ca","kind":"ClusterIssuer"}}`})
	if n := len(res.byType(typeIssuer)); n != 0 {
		t.Errorf("created %d Issuers, want none", n)
	}
	c := res.one(t, typeCertificate).Inputs
	want(t, "issuerRef", get(c, "spec.issuerRef"), map[string]any{"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
}

func TestSecretModeMountsTheGivenSecretAndTrustsTheGivenBundle(t *testing.T) {
	t.Parallel()
	ca := testCAPEM(t)
	res := mustRun(t, map[string]string{"certificates": jsonObject(t, map[string]any{"mode": "secret", "secretName": "corp-tls", "caBundle": ca})})
	for _, typ := range []string{typePrivateKey, typeSelfSignedCert, typeLocallySignedCert, typeSecret, typeCertificate} {
		if n := len(res.byType(typ)); n != 0 {
			t.Errorf("secret mode created %d %s", n, typ)
		}
	}
	want(t, "TLS volume", str(get(res.one(t, typeDeployment).Inputs, "spec.template.spec"), "volumes.0.secret.secretName"), "corp-tls")
	want(t, "caBundle", str(res.one(t, typeMWC).Inputs, "webhooks.0.clientConfig.caBundle"), base64.StdEncoding.EncodeToString([]byte(ca)))
}

// CA change without a window: the configuration trusts the CA of the last update beside the new
// one, and (rolling in place) is updated before the Deployment, so no Pod serves a certificate
// the API server does not trust yet. The next update, with nothing changed, drops the old CA.
func TestCABundleCarriesTheOldAndTheNewCAThroughACAChange(t *testing.T) {
	t.Parallel()
	oldCA, newCA := testCAPEM(t), testCAPEM(t)
	deployed := previous{
		deployed: true, caCertPEM: oldCA, namespace: "ai-webhook", service: "ai-webhook",
		configName: "ai-mutating-webhook",
	}
	bundle := func(res *result) string {
		t.Helper()
		b, err := base64.StdEncoding.DecodeString(str(res.one(t, typeMWC).Inputs, "webhooks.0.clientConfig.caBundle"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("pulumi mode, the CA replaced", func(t *testing.T) {
		res, err := runWith(t, &mocks{previous: &deployed}, nil)
		if err != nil {
			t.Fatal(err)
		}
		current := secretData(t, res.one(t, typeSecret).Inputs, "ca.crt")
		want(t, "caBundle", bundle(res), current+oldCA)
		mwc, dep := res.one(t, typeMWC), res.one(t, typeDeployment)
		if !slices.ContainsFunc(dep.Dependencies, func(urn string) bool { return strings.Contains(urn, "$"+typeMWC+"::") }) {
			t.Errorf("the Deployment does not wait for the webhook configuration: new Pods could serve the new CA before caBundle has it; dependencies %v", dep.Dependencies)
		}
		if slices.ContainsFunc(mwc.Dependencies, func(urn string) bool { return strings.Contains(urn, "$"+typeDeployment+"::") }) {
			t.Errorf("the webhook configuration waits for the Deployment, so caBundle changes only after the roll; dependencies %v", mwc.Dependencies)
		}
	})
	t.Run("secret mode, a new bundle", func(t *testing.T) {
		cfg := map[string]string{"certificates": jsonObject(t, map[string]any{"mode": "secret", "secretName": "corp-tls-2", "caBundle": newCA})}
		res, err := runWith(t, &mocks{previous: &deployed}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		want(t, "caBundle", bundle(res), newCA+oldCA)
	})
	t.Run("the next update drops the old CA", func(t *testing.T) {
		after := deployed
		after.caCertPEM = newCA
		cfg := map[string]string{"certificates": jsonObject(t, map[string]any{"mode": "secret", "secretName": "corp-tls-2", "caBundle": newCA})}
		res, err := runWith(t, &mocks{previous: &after}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		want(t, "caBundle", bundle(res), newCA)
	})
	t.Run("a first install trusts one CA and waits for the Deployment", func(t *testing.T) {
		res := mustRun(t, nil)
		want(t, "caBundle", bundle(res), secretData(t, res.one(t, typeSecret).Inputs, "ca.crt"))
		deps := res.one(t, typeMWC).Dependencies
		if !slices.ContainsFunc(deps, func(urn string) bool { return strings.Contains(urn, "$"+typeDeployment+"::") }) {
			t.Errorf("the webhook configuration does not wait for the Deployment on a first install; dependencies %v", deps)
		}
	})
	t.Run("a move to another namespace waits for the Deployment", func(t *testing.T) {
		res, err := runWith(t, &mocks{previous: &deployed}, map[string]string{"namespace": "platform"})
		if err != nil {
			t.Fatal(err)
		}
		deps := res.one(t, typeMWC).Dependencies
		if !slices.ContainsFunc(deps, func(urn string) bool { return strings.Contains(urn, "$"+typeDeployment+"::") }) {
			t.Errorf("moved, the webhook configuration would point at a Service before its Pods serve; dependencies %v", deps)
		}
	})
}

func TestRenewalWarningStartsInTheRenewalWindow(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		notAfter time.Time
		want     string // "" for no warning
	}{
		{"never deployed", time.Time{}, ""},
		{"outside the window", now.Add(246 * 24 * time.Hour), ""},
		{"inside the window", now.Add(29 * 24 * time.Hour), "expires at 2027-01-30T00:00:00Z (in 29 days), inside earlyRenewalHours (5880h)"},
		{"a day left", now.Add(20 * time.Hour), "(in 20h0m0s)"},
		{"expired", now.Add(-time.Hour), "EXPIRED at 2026-12-31T23:00:00Z: the API server cannot call the webhook (failurePolicy Ignore: Pods are admitted without their profile)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renewalMessage(cfg, tt.notAfter, now)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("message = %q, want one containing %q", got, tt.want)
			}
		})
	}
}

// jsonObject is v as the JSON text of an object config key.
func jsonObject(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// roundTrip gives v the shape of plain property values (numbers as float64, []any).
func roundTrip(t *testing.T, v any) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(jsonObject(t, v)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// programAfter is Program after an update that left prev.
func programAfter(prev previous) func(*pulumi.Context) error {
	return func(ctx *pulumi.Context) error {
		cfg, err := LoadConfig(ctx)
		if err != nil {
			return err
		}
		stack, err := newWebhookStack(ctx, "ai-webhook", cfg, func(*pulumi.Context, pulumi.Resource) (previous, error) { return prev, nil })
		if err != nil {
			return err
		}
		for name, value := range stack.outputs() {
			ctx.Export(name, value)
		}
		return nil
	}
}

// Custom resources (cert-manager's objects, the monitoring objects, admission policies) ask for
// the same Kubernetes provider version as the typed resources: one default provider, so the
// first preview after an install has nothing to do.
func TestEveryKubernetesResourceAsksForOneProviderVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		config map[string]string
	}{
		{"certManager mode", map[string]string{"certificates": `{"mode":"certManager"}`}},
		{"monitoring objects", map[string]string{"monitoring": `{"podMonitor":true,"prometheusRule":true}`}},
		{"auto backend", map[string]string{"backend": "auto"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			versions := map[string][]string{}
			for _, r := range mustRun(t, tc.config).resources {
				if strings.HasPrefix(r.Type, "kubernetes:") {
					versions[r.Version] = append(versions[r.Version], r.Type)
				}
			}
			if len(versions) != 1 || versions[""] != nil {
				t.Errorf("provider versions asked for, with the types asking: %v; want one, not empty", versions)
			}
		})
	}
}
