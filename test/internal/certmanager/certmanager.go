// Package certmanager runs cert-manager's real controller and CA injector (bin/cert-manager-controller,
// bin/cainjector, built by tools/certmanager) beside a test cluster, and drives its objects.
package certmanager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/ai-webhook/ai-webhook/test/internal/crds"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

// Resource is the cert-manager.io/v1 resource of a plural ("certificates").
func Resource(plural string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: plural}
}

// InstallCRDs creates cert-manager's CRDs, which `make tools` copies from the module
// tools/certmanager pins into root/bin/cert-manager-crds, and waits until each is established.
func InstallCRDs(ctx context.Context, dyn dynamic.Interface, root string) error {
	dir := filepath.Join(root, "bin", "cert-manager-crds")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err == nil && len(files) == 0 {
		err = errors.New("none there")
	}
	if err != nil {
		return fmt.Errorf("cert-manager CRDs in %s: %v: run `make tools` (or `make certmanager-tools`)", dir, err)
	}
	return crds.InstallCRDs(ctx, dyn, files)
}

// Start runs root/bin/name against c until the test ends, when SIGTERM must stop it cleanly;
// the end of its log is printed when the test failed.
func Start(t testing.TB, c *cluster.Cluster, root, name string) *cluster.Process {
	t.Helper()
	bin := filepath.Join(root, "bin", name)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: run `make tools` (or `make certmanager-tools`)", err)
	}
	p, err := c.Run(bin, "--kubeconfig="+c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if st := p.Stop(30 * time.Second); st == nil || !st.Success() {
			t.Errorf("%s did not stop cleanly on SIGTERM: %v", p.Name, st)
		}
		if t.Failed() {
			t.Logf("end of %s:\n%s", p.Log, cluster.Tail(p.Log, 80))
		}
	})
	return p
}

// Issued is nil once Certificate name is Ready at revision (status.revision counts the
// issuances: 1 the first, 2 after one renewal, ...).
func Issued(ctx context.Context, certs dynamic.ResourceInterface, name string, revision int64) error {
	crt, err := certs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if rev, _, _ := unstructured.NestedInt64(crt.Object, "status", "revision"); rev != revision || !crds.HasCondition(crt, "Ready", "True") {
		return fmt.Errorf("Certificate %s at revision %d, want %d and Ready; status %v", name, rev, revision, crt.Object["status"])
	}
	return nil
}

// RequestRenewal asks cert-manager to renew Certificate name now, as `cmctl renew` does: the
// Issuing condition set to True through the status subresource.
func RequestRenewal(ctx context.Context, certs dynamic.ResourceInterface, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		crt, err := certs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conditions, _, _ := unstructured.NestedSlice(crt.Object, "status", "conditions")
		conditions = slices.DeleteFunc(conditions, func(c any) bool {
			m, _ := c.(map[string]any)
			return m["type"] == "Issuing"
		})
		conditions = append(conditions, map[string]any{
			"type": "Issuing", "status": "True", "reason": "ManuallyTriggered", "message": "renewal requested by a test",
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339), "observedGeneration": crt.GetGeneration(),
		})
		if err := unstructured.SetNestedSlice(crt.Object, conditions, "status", "conditions"); err != nil {
			return err
		}
		_, err = certs.UpdateStatus(ctx, crt, metav1.UpdateOptions{})
		return err
	})
}
