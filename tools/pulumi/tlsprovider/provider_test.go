package tlsprovider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// harness drives the provider the way the engine does: Check, then Create.
type harness struct {
	t   *testing.T
	now time.Time
	p   *Provider
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, now: t0}
	h.p = New(func() time.Time { return h.now })
	return h
}

func urn(typ, name string) resource.URN {
	return resource.NewURN("dev", "proj", "", tokens.Type(typ), name)
}

func (h *harness) check(typ string, news resource.PropertyMap) plugin.CheckResponse {
	h.t.Helper()
	resp, err := h.p.Check(context.Background(), plugin.CheckRequest{URN: urn(typ, "r"), Type: tokens.Type(typ), News: news})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// create checks and creates a resource and returns its inputs and state.
func (h *harness) create(typ string, news resource.PropertyMap) (resource.PropertyMap, resource.PropertyMap) {
	h.t.Helper()
	checked := h.check(typ, news)
	if len(checked.Failures) > 0 {
		h.t.Fatalf("check %s: %v", typ, checked.Failures)
	}
	resp, err := h.p.Create(context.Background(), plugin.CreateRequest{URN: urn(typ, "r"), Type: tokens.Type(typ), Properties: checked.Properties})
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.ID == "" {
		h.t.Fatalf("create %s: empty id", typ)
	}
	return checked.Properties, resp.Properties
}

func (h *harness) diff(typ string, oldIns, oldState, news resource.PropertyMap) plugin.DiffResult {
	h.t.Helper()
	checked := h.check(typ, news)
	resp, err := h.p.Diff(context.Background(), plugin.DiffRequest{
		URN: urn(typ, "r"), Type: tokens.Type(typ), ID: "id",
		OldInputs: oldIns, OldOutputs: oldState, NewInputs: checked.Properties,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

func str(m resource.PropertyMap, k string) string {
	return plain(m[resource.PropertyKey(k)]).StringValue()
}

func stringList(vs ...string) resource.PropertyValue {
	var arr []resource.PropertyValue
	for _, v := range vs {
		arr = append(arr, resource.NewStringProperty(v))
	}
	return resource.NewArrayProperty(arr)
}

// chain builds what the ai-webhook stack builds: a CA and a serving
// certificate for svc.ns.svc signed by it.
type chain struct {
	caKeyState, caIns, caState, keyState, csrState, certIns, certState resource.PropertyMap
}

func (h *harness) chain(validity, early float64) chain {
	var c chain
	ecdsa := resource.PropertyMap{"algorithm": resource.NewStringProperty("ECDSA"), "ecdsaCurve": resource.NewStringProperty("P256")}
	_, c.caKeyState = h.create(TypePrivateKey, ecdsa)
	c.caIns, c.caState = h.create(TypeSelfSignedCert, resource.PropertyMap{
		"privateKeyPem":       c.caKeyState["privateKeyPem"],
		"isCaCertificate":     resource.NewBoolProperty(true),
		"subject":             resource.NewObjectProperty(resource.PropertyMap{"commonName": resource.NewStringProperty("ai-webhook CA")}),
		"validityPeriodHours": resource.NewNumberProperty(87600),
		"allowedUses":         stringList("cert_signing", "crl_signing", "digital_signature"),
	})
	_, c.keyState = h.create(TypePrivateKey, ecdsa)
	_, c.csrState = h.create(TypeCertRequest, resource.PropertyMap{
		"privateKeyPem": c.keyState["privateKeyPem"],
		"subject":       resource.NewObjectProperty(resource.PropertyMap{"commonName": resource.NewStringProperty("svc.ns.svc")}),
		"dnsNames":      stringList("svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local"),
	})
	c.certIns, c.certState = h.create(TypeLocallySignedCert, resource.PropertyMap{
		"certRequestPem":      c.csrState["certRequestPem"],
		"caCertPem":           c.caState["certPem"],
		"caPrivateKeyPem":     c.caKeyState["privateKeyPem"],
		"validityPeriodHours": resource.NewNumberProperty(validity),
		"earlyRenewalHours":   resource.NewNumberProperty(early),
		"allowedUses":         stringList("server_auth", "digital_signature", "key_encipherment"),
	})
	return c
}

func TestServingCertificateVerifiesAgainstCAAndServesTLS(t *testing.T) {
	h := newHarness(t)
	h.now = time.Now() // x509 verification below uses the real clock
	c := h.chain(720, 240)

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(str(c.caState, "certPem"))) {
		t.Fatal("CA certPem does not parse")
	}
	block, _ := pem.Decode([]byte(str(c.certState, "certPem")))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "svc.ns.svc", Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("serving cert does not verify for svc.ns.svc: %v", err)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 720*time.Hour {
		t.Errorf("validity = %v, want 720h", got)
	}
	if str(c.certState, "caKeyAlgorithm") != "ECDSA" || str(c.caState, "keyAlgorithm") != "ECDSA" {
		t.Errorf("key algorithms: ca %q, cert ca %q", str(c.caState, "keyAlgorithm"), str(c.certState, "caKeyAlgorithm"))
	}

	// The pair the Secret carries works for a real TLS handshake, as the API
	// server will make it.
	pair, err := tls.X509KeyPair([]byte(str(c.certState, "certPem")), []byte(str(c.keyState, "privateKeyPem")))
	if err != nil {
		t.Fatal(err)
	}
	sc, cc := net.Pipe()
	go func() {
		srv := tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{pair}})
		_ = srv.Handshake()
		_ = srv.Close()
	}()
	cli := tls.Client(cc, &tls.Config{RootCAs: roots, ServerName: "svc.ns.svc"})
	if err := cli.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	_ = cli.Close()
}

func TestPrivateKeysAreSecretOutputs(t *testing.T) {
	h := newHarness(t)
	c := h.chain(48, 0)
	for _, k := range []string{"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"} {
		if !c.keyState[resource.PropertyKey(k)].IsSecret() {
			t.Errorf("PrivateKey.%s is not secret", k)
		}
	}
	if c.keyState["publicKeyPem"].IsSecret() || str(c.keyState, "publicKeyOpenssh") == "" ||
		!strings.HasPrefix(str(c.keyState, "publicKeyFingerprintSha256"), "SHA256:") {
		t.Errorf("public key outputs: %v", c.keyState)
	}
	if !c.certState["caPrivateKeyPem"].IsSecret() || !c.caState["privateKeyPem"].IsSecret() {
		t.Error("private key inputs must stay secret in certificate state")
	}
}

func TestCheckAppliesUpstreamDefaults(t *testing.T) {
	h := newHarness(t)
	got := h.check(TypePrivateKey, resource.PropertyMap{"algorithm": resource.NewStringProperty("ECDSA")}).Properties
	if str(got, "ecdsaCurve") != "P224" || got["rsaBits"].NumberValue() != 2048 {
		t.Errorf("defaults: %v", got)
	}
}

func TestCheckRejectsCamelCaseAllowedUses(t *testing.T) {
	h := newHarness(t)
	resp := h.check(TypeSelfSignedCert, resource.PropertyMap{
		"privateKeyPem":       resource.NewStringProperty("x"),
		"validityPeriodHours": resource.NewNumberProperty(1),
		"allowedUses":         stringList("certSigning"),
	})
	if len(resp.Failures) != 1 || resp.Failures[0].Property != "allowedUses" ||
		!strings.Contains(resp.Failures[0].Reason, "cert_signing") {
		t.Fatalf("failures = %v", resp.Failures)
	}
}

func TestCheckReportsMissingRequiredAndUnknownProperties(t *testing.T) {
	h := newHarness(t)
	resp := h.check(TypeLocallySignedCert, resource.PropertyMap{"validityHours": resource.NewNumberProperty(1)})
	var props []string
	for _, f := range resp.Failures {
		props = append(props, string(f.Property))
	}
	slices.Sort(props)
	want := []string{"allowedUses", "caCertPem", "caPrivateKeyPem", "certRequestPem", "validityHours", "validityPeriodHours"}
	if !slices.Equal(props, want) {
		t.Fatalf("failures on %v, want %v", props, want)
	}
}

func TestUnknownInputsPassCheckDuringPreview(t *testing.T) {
	h := newHarness(t)
	resp := h.check(TypeCertRequest, resource.PropertyMap{
		"privateKeyPem": resource.MakeComputed(resource.NewStringProperty("")),
	})
	if len(resp.Failures) != 0 {
		t.Fatalf("failures = %v", resp.Failures)
	}
	cr, err := h.p.Create(context.Background(), plugin.CreateRequest{URN: urn(TypeCertRequest, "r"), Type: TypeCertRequest, Properties: resp.Properties, Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	if !cr.Properties["certRequestPem"].IsComputed() {
		t.Errorf("preview certRequestPem = %v, want unknown", cr.Properties["certRequestPem"])
	}
}

func TestDiff(t *testing.T) {
	h := newHarness(t)
	c := h.chain(48, 12)
	withInput := func(k string, v resource.PropertyValue) resource.PropertyMap {
		m := c.certIns.Copy()
		m[resource.PropertyKey(k)] = v
		return m
	}

	t.Run("same inputs: no changes", func(t *testing.T) {
		if d := h.diff(TypeLocallySignedCert, c.certIns, c.certState, c.certIns); d.Changes != plugin.DiffNone {
			t.Fatalf("diff = %+v", d)
		}
	})
	t.Run("secretness alone is no change", func(t *testing.T) {
		news := withInput("caCertPem", resource.MakeSecret(c.certIns["caCertPem"]))
		if d := h.diff(TypeLocallySignedCert, c.certIns, c.certState, news); d.Changes != plugin.DiffNone {
			t.Fatalf("diff = %+v", d)
		}
	})
	t.Run("input change replaces", func(t *testing.T) {
		d := h.diff(TypeLocallySignedCert, c.certIns, c.certState, withInput("allowedUses", stringList("server_auth")))
		if d.Changes != plugin.DiffSome || !slices.Equal(d.ReplaceKeys, []resource.PropertyKey{"allowedUses"}) {
			t.Fatalf("diff = %+v", d)
		}
	})
	t.Run("new CA replaces", func(t *testing.T) {
		d := h.diff(TypeLocallySignedCert, c.certIns, c.certState, withInput("caCertPem", resource.NewStringProperty("other")))
		if !slices.Equal(d.ReplaceKeys, []resource.PropertyKey{"caCertPem"}) {
			t.Fatalf("diff = %+v", d)
		}
	})
	t.Run("earlyRenewalHours updates in place", func(t *testing.T) {
		d := h.diff(TypeLocallySignedCert, c.certIns, c.certState, withInput("earlyRenewalHours", resource.NewNumberProperty(24)))
		if d.Changes != plugin.DiffSome || len(d.ReplaceKeys) != 0 {
			t.Fatalf("diff = %+v", d)
		}
	})
	t.Run("unknown input replaces", func(t *testing.T) {
		d := h.diff(TypeLocallySignedCert, c.certIns, c.certState, withInput("certRequestPem", resource.MakeComputed(resource.NewStringProperty(""))))
		if !slices.Equal(d.ReplaceKeys, []resource.PropertyKey{"certRequestPem"}) {
			t.Fatalf("diff = %+v", d)
		}
	})
}

// A routine `pulumi up` renews a certificate once inside earlyRenewalHours;
// refresh records readyForRenewal. Upstream behaves the same.
func TestRenewalInsideEarlyRenewalWindow(t *testing.T) {
	h := newHarness(t)
	c := h.chain(48, 12) // ready for renewal from t0+36h

	if c.certState["readyForRenewal"].BoolValue() {
		t.Fatal("fresh certificate is ready for renewal")
	}
	h.now = t0.Add(35 * time.Hour)
	if d := h.diff(TypeLocallySignedCert, c.certIns, c.certState, c.certIns); d.Changes != plugin.DiffNone {
		t.Fatalf("before the window: diff = %+v", d)
	}

	h.now = t0.Add(36 * time.Hour)
	d := h.diff(TypeLocallySignedCert, c.certIns, c.certState, c.certIns)
	if d.Changes != plugin.DiffSome || !slices.Equal(d.ReplaceKeys, []resource.PropertyKey{"readyForRenewal"}) {
		t.Fatalf("inside the window: diff = %+v", d)
	}

	read, err := h.p.Read(context.Background(), plugin.ReadRequest{
		URN: urn(TypeLocallySignedCert, "r"), Type: TypeLocallySignedCert, ID: "id", Inputs: c.certIns, State: c.certState,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !read.Outputs["readyForRenewal"].BoolValue() {
		t.Error("refresh inside the window: readyForRenewal = false")
	}
	if !read.Outputs["caPrivateKeyPem"].IsSecret() {
		t.Error("refresh lost the secret")
	}

	// Raising earlyRenewalHours into the window renews at once, as upstream.
	h.now = t0.Add(time.Hour)
	news := c.certIns.Copy()
	news["earlyRenewalHours"] = resource.NewNumberProperty(48)
	if d := h.diff(TypeLocallySignedCert, c.certIns, c.certState, news); !slices.Contains(d.ReplaceKeys, "readyForRenewal") {
		t.Fatalf("earlyRenewalHours >= remaining validity: diff = %+v", d)
	}
}

func TestKeyAlgorithms(t *testing.T) {
	h := newHarness(t)
	for _, in := range []resource.PropertyMap{
		{"algorithm": resource.NewStringProperty("RSA")},
		{"algorithm": resource.NewStringProperty("ED25519")},
		{"algorithm": resource.NewStringProperty("ECDSA"), "ecdsaCurve": resource.NewStringProperty("P384")},
	} {
		_, st := h.create(TypePrivateKey, in)
		if _, alg, err := parsePrivateKey(str(st, "privateKeyPem")); err != nil || alg != str(in, "algorithm") {
			t.Errorf("%v: parsed %q, %v", in, alg, err)
		}
		if _, _, err := parsePrivateKey(str(st, "privateKeyPemPkcs8")); err != nil {
			t.Errorf("%v: pkcs8: %v", in, err)
		}
	}
}
