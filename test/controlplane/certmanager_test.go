package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/infra/webhookstack"
	"github.com/ai-webhook/ai-webhook/test/cluster"
)

// certManagerModule is the cert-manager release whose CRDs (deploy/crds/ of the module) the
// test installs: the objects the stack renders in certManager mode must be accepted by them.
const certManagerModule = "github.com/cert-manager/cert-manager@v1.21.2"

// certManagerCRDs returns the CRD files of certManagerModule from the Go module cache (it is
// downloaded there by `go mod download`; the test runs without network).
func certManagerCRDs(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", certManagerModule)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	out, err := cmd.Output()
	var mod struct{ Dir, Error string }
	_ = json.Unmarshal(out, &mod)
	if err != nil || mod.Dir == "" {
		t.Fatalf("%s is not in the Go module cache (%v %s): run `go mod download %s`", certManagerModule, err, mod.Error, certManagerModule)
	}
	files, err := filepath.Glob(filepath.Join(mod.Dir, "deploy", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs under %s/deploy/crds (%v)", mod.Dir, err)
	}
	return files
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCertManagerCRDs creates cert-manager's CRDs (once per cluster) and waits until each is
// established.
func installCertManagerCRDs(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	ctx := context.Background()
	var names []string
	for _, file := range certManagerCRDs(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var crd unstructured.Unstructured
		if err := yaml.Unmarshal(data, &crd.Object); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if crd.GetKind() != "CustomResourceDefinition" {
			continue
		}
		names = append(names, crd.GetName())
		if _, err := dyn.Resource(crdResource).Create(ctx, &crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("install CRD %s: %v", crd.GetName(), err)
		}
	}
	for _, name := range names {
		cluster.Eventually(t, 30*time.Second, "CRD "+name+" to be established", func() error {
			crd, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
			return fmt.Errorf("conditions %v", conds)
		})
	}
}

func certManagerResource(kind string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: strings.ToLower(kind) + "s"}
}

// The cert-manager objects of the stack's certManager mode are accepted by cert-manager's own
// CRDs (strict field validation, so a misspelt field is an error, not silently pruned) and are
// wired: the serving Certificate writes the Secret the Pods mount, for the names the API server
// dials, issued by the CA Issuer the stack creates, whose CA Secret is the CA Certificate's; the
// webhook configuration's inject-ca-from names it. cert-manager's controller and CA injector
// do not run here (README, "Certificates"): nothing is issued.
func TestCertManagerObjectsAreAcceptedAndWired(t *testing.T) {
	requireControlPlane(t)
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(fx.cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	installCertManagerCRDs(t, dyn)
	ns := newNamespace(t, nil)

	cfg := webhookstack.Config{
		Name: "ai-webhook", Namespace: ns,
		CAValidityHours: 87600, CertValidityHours: 2160, EarlyRenewalHours: 720,
		Certificates: webhookstack.Certificates{Mode: webhookstack.CertModeCertManager},
	}
	stored := map[string]*unstructured.Unstructured{} // kind/name
	for _, obj := range webhookstack.CertManagerObjects(cfg) {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": obj.APIVersion(), "kind": obj.Kind,
			"metadata": map[string]any{"name": obj.Name, "namespace": ns},
			"spec":     obj.Spec,
		}}
		got, err := dyn.Resource(certManagerResource(obj.Kind)).Namespace(ns).Create(ctx, u, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
		if err != nil {
			t.Fatalf("the API server refused %s %s: %v", obj.Kind, obj.Name, err)
		}
		stored[obj.Kind+"/"+obj.Name] = got
	}

	// Strict validation is on: a field the CRD does not know is refused.
	typo := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": "typo", "namespace": ns},
		"spec":     map[string]any{"secretName": "x", "issuerRef": map[string]any{"name": "x"}, "dnsName": []any{"x"}},
	}}
	if _, err := dyn.Resource(certManagerResource("Certificate")).Namespace(ns).Create(ctx, typo, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}); err == nil || !strings.Contains(err.Error(), "dnsName") {
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

func webhookServerNameIn(service, ns string) string { return service + "." + ns + ".svc" }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
