// Package crds installs CustomResourceDefinitions (cert-manager's, prometheus-operator's) into a
// test cluster and reads the conditions of their objects.
package crds

import (
	"context"
	"fmt"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs creates the CustomResourceDefinitions in files (other kinds there are skipped;
// one already installed is kept, since a cluster outlives a test) and waits until each is
// established.
func InstallCRDs(ctx context.Context, dyn dynamic.Interface, files []string) error {
	var names []string
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var crd unstructured.Unstructured
		if err := yaml.Unmarshal(data, &crd.Object); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if crd.GetKind() != "CustomResourceDefinition" {
			continue
		}
		names = append(names, crd.GetName())
		if _, err := dyn.Resource(crdGVR).Create(ctx, &crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("install CRD %s: %w", crd.GetName(), err)
		}
	}
	for _, name := range names {
		err := cluster.Wait(ctx, 30*time.Second, func(ctx context.Context) error {
			crd, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !HasCondition(crd, "Established", "True") {
				return fmt.Errorf("status %v", crd.Object["status"])
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", name, err)
		}
	}
	return nil
}

// HasCondition says whether an object's status.conditions has one of type kind with status.
func HasCondition(u *unstructured.Unstructured, kind, status string) bool {
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		if m, _ := c.(map[string]any); m["type"] == kind && m["status"] == status {
			return true
		}
	}
	return false
}
