package webhookstack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"
)

// Resource type tokens registered by the program.
const (
	typePrivateKey        = "tls:index/privateKey:PrivateKey"
	typeSelfSignedCert    = "tls:index/selfSignedCert:SelfSignedCert"
	typeCertRequest       = "tls:index/certRequest:CertRequest"
	typeLocallySignedCert = "tls:index/locallySignedCert:LocallySignedCert"
	typeNamespace         = "kubernetes:core/v1:Namespace"
	typeSecret            = "kubernetes:core/v1:Secret"
	typeConfigMap         = "kubernetes:core/v1:ConfigMap"
	typeServiceAccount    = "kubernetes:core/v1:ServiceAccount"
	typeService           = "kubernetes:core/v1:Service"
	typeDeployment        = "kubernetes:apps/v1:Deployment"
	typePDB               = "kubernetes:policy/v1:PodDisruptionBudget"
	typeMWC               = "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration"
)

// testImage satisfies the one required key.
const testImage = "registry.example.com/ai-webhook:test"

// registered is one resource as the mock monitor saw it.
type registered struct {
	Type, Name, Parent string
	Inputs             map[string]any // secrets unwrapped
	State              map[string]any // what the mock returned as outputs, secrets unwrapped
	Dependencies       []string       // URNs
	Version            string         // the provider version the registration asks for
}

// mocks stands in for the engine and the providers. pulumi-tls resources under mocks would only
// echo their inputs, so this mock issues real keys and certificates with crypto/x509: the tests
// can parse what ends up in the Secret and the caBundle.
type mocks struct {
	mu        sync.Mutex
	resources []registered
	// previous, when set, is what the stack's last update left (certs_trust.go): the mocked
	// engine keeps no root Stack state for readPrevious to read, so the program is given it
	// (certs_trust_test.go reads it through a fake monitor).
	previous *previous
}

func (m *mocks) Call(pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	in := plain(resource.NewProperty(args.Inputs)).(map[string]any)
	outs := args.Inputs.Copy()
	set := func(key, value string, secret bool) {
		v := resource.NewProperty(value)
		if secret {
			v = resource.MakeSecret(v)
		}
		outs[resource.PropertyKey(key)] = v
	}

	switch args.TypeToken {
	case typePrivateKey:
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return "", nil, err
		}
		set("privateKeyPem", encodePEM("PRIVATE KEY", der), true)
	case typeSelfSignedCert:
		key, err := parseKey(str(in, "privateKeyPem"))
		if err != nil {
			return "", nil, err
		}
		tmpl := certTemplate(in)
		tmpl.Subject = pkix.Name{CommonName: str(in, "subject.commonName")}
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return "", nil, err
		}
		set("certPem", encodePEM("CERTIFICATE", der), false)
		set("validityEndTime", tmpl.NotAfter.Format(time.RFC3339), false)
	case typeCertRequest:
		key, err := parseKey(str(in, "privateKeyPem"))
		if err != nil {
			return "", nil, err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject:  pkix.Name{CommonName: str(in, "subject.commonName")},
			DNSNames: strs(in, "dnsNames"),
		}, key)
		if err != nil {
			return "", nil, err
		}
		set("certRequestPem", encodePEM("CERTIFICATE REQUEST", der), false)
	case typeLocallySignedCert:
		csr, err := parseCSR(str(in, "certRequestPem"))
		if err != nil {
			return "", nil, err
		}
		ca, err := parseCert(str(in, "caCertPem"))
		if err != nil {
			return "", nil, err
		}
		caKey, err := parseKey(str(in, "caPrivateKeyPem"))
		if err != nil {
			return "", nil, err
		}
		tmpl := certTemplate(in)
		tmpl.Subject, tmpl.DNSNames = csr.Subject, csr.DNSNames
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, csr.PublicKey, caKey)
		if err != nil {
			return "", nil, err
		}
		set("certPem", encodePEM("CERTIFICATE", der), false)
		set("validityEndTime", tmpl.NotAfter.Format(time.RFC3339), false)
	}
	// Kubernetes objects without metadata.name get a generated one, as the provider does.
	if strings.HasPrefix(args.TypeToken, "kubernetes:") && str(in, "metadata.name") == "" {
		meta, _ := in["metadata"].(map[string]any)
		meta = maps.Clone(meta)
		if meta == nil {
			meta = map[string]any{}
		}
		meta["name"] = args.Name + "-0a1b2c3d"
		outs["metadata"] = resource.NewProperty(resource.NewPropertyMapFromMap(meta))
	}

	m.mu.Lock()
	m.resources = append(m.resources, registered{
		Type:         args.TypeToken,
		Name:         args.Name,
		Parent:       args.RegisterRPC.GetParent() + args.ReadRPC.GetParent(), // one is nil: a read or a registration
		Inputs:       in,
		State:        plain(resource.NewProperty(outs)).(map[string]any),
		Dependencies: args.RegisterRPC.GetDependencies(),
		Version:      args.RegisterRPC.GetVersion(),
	})
	m.mu.Unlock()
	return args.Name + "-id", outs, nil
}

// byType returns the registered resources of one type.
func (m *mocks) byType(typ string) []registered {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []registered
	for _, r := range m.resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// one returns the single resource of a type, failing the test otherwise.
func (m *mocks) one(t *testing.T, typ string) registered {
	t.Helper()
	list := m.byType(typ)
	if len(list) != 1 {
		t.Fatalf("want exactly one %s, got %d", typ, len(list))
	}
	return list[0]
}

// result is one program run under mocks.
type result struct {
	*mocks
	outputs map[string]internals.UnsafeAwaitOutputResult
}

// run runs Program under mocks with the given "ai-webhook:" keys (plus the required image unless
// config sets it) and returns what was registered and exported.
func run(t *testing.T, config map[string]string) (*result, error) {
	t.Helper()
	return runWith(t, &mocks{}, config)
}

// runWith is run with the given mocks (e.g. with previous outputs).
func runWith(t *testing.T, m *mocks, config map[string]string) (*result, error) {
	t.Helper()
	cfg := map[string]string{ConfigNamespace + ":image": testImage}
	for k, v := range config {
		cfg[ConfigNamespace+":"+k] = v
	}
	res := &result{mocks: m, outputs: map[string]internals.UnsafeAwaitOutputResult{}}
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		program := Program
		if m.previous != nil {
			program = programAfter(*m.previous)
		}
		if err := program(ctx); err != nil {
			return err
		}
		for name, value := range ctx.GetCurrentExportMap() {
			out, err := internals.UnsafeAwaitOutput(ctx.Context(), pulumi.ToOutput(value))
			if err != nil {
				return err
			}
			res.outputs[name] = out
		}
		return nil
	}, pulumi.WithMocks(ConfigNamespace, "test", res.mocks), func(info *pulumi.RunInfo) { info.Config = cfg })
	return res, err
}

// mustRun is run for configurations that must deploy.
func mustRun(t *testing.T, config map[string]string) *result {
	t.Helper()
	res, err := run(t, config)
	if err != nil {
		t.Fatalf("program failed: %v", err)
	}
	return res
}

// plain turns a property value into plain Go values, unwrapping secrets.
func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsObject():
		out := map[string]any{}
		for k, e := range v.ObjectValue() {
			out[string(k)] = plain(e)
		}
		return out
	case v.IsArray():
		out := []any{}
		for _, e := range v.ArrayValue() {
			out = append(out, plain(e))
		}
		return out
	case v.IsOutput():
		return plain(v.OutputValue().Element)
	case v.IsNull():
		return nil
	default:
		return v.Mappable()
	}
}

// get follows a dotted path ("spec.template.spec.containers.0.image") through plain values. A dot
// inside a key is escaped with a backslash: `data.profiles\.yaml`.
func get(v any, path string) any {
	for _, part := range strings.Split(strings.ReplaceAll(path, `\.`, "\x00"), ".") {
		part = strings.ReplaceAll(part, "\x00", ".")
		switch node := v.(type) {
		case map[string]any:
			v = node[part]
		case []any:
			var i int
			if _, err := fmt.Sscan(part, &i); err != nil || i >= len(node) {
				return nil
			}
			v = node[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path string) string {
	s, _ := get(v, path).(string)
	return s
}

func strs(v any, path string) []string {
	var out []string
	list, _ := get(v, path).([]any)
	for _, e := range list {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func num(v any, path string) int {
	f, _ := get(v, path).(float64)
	return int(f)
}

func encodePEM(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func decodePEM(s string) ([]byte, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, fmt.Errorf("no PEM block in %q", s)
	}
	return block.Bytes, nil
}

func parseKey(s string) (*ecdsa.PrivateKey, error) {
	der, err := decodePEM(s)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	return key.(*ecdsa.PrivateKey), nil
}

func parseCert(s string) (*x509.Certificate, error) {
	der, err := decodePEM(s)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func parseCSR(s string) (*x509.CertificateRequest, error) {
	der, err := decodePEM(s)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificateRequest(der)
}

func certTemplate(in map[string]any) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	now := time.Now().UTC().Truncate(time.Second)
	return &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now,
		NotAfter:     now.Add(time.Duration(num(in, "validityPeriodHours")) * time.Hour),
	}
}
