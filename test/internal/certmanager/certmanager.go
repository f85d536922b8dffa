// Package certmanager drives cert-manager's objects in the tests that run its real controller
// and CA injector (bin/cert-manager-controller, bin/cainjector).
package certmanager

import (
	"context"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
)

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
