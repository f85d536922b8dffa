package controlplane

import (
	"context"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// createStrict creates a custom resource as the stack renders it under strict field
// validation, so a field its CRD does not know is refused rather than pruned. The resource is
// the kind's lower-case plural.
func createStrict(ctx context.Context, dyn dynamic.Interface, apiVersion, kind, ns, name string, labels map[string]string, spec any) (*unstructured.Unstructured, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	meta := map[string]any{"name": name, "namespace": ns}
	if len(labels) > 0 {
		l := map[string]any{}
		for k, v := range labels {
			l[k] = v
		}
		meta["labels"] = l
	}
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta, "spec": spec}}
	return dyn.Resource(gv.WithResource(strings.ToLower(kind)+"s")).Namespace(ns).Create(ctx, u, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
}
