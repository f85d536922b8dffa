package cluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nodev1 "k8s.io/api/node/v1"
	resourcev1 "k8s.io/api/resource/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func runtimeClass(name string) *nodev1.RuntimeClass {
	return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: name}
}

func claimTemplate(ns, name string) *resourcev1.ResourceClaimTemplate {
	return &resourcev1.ResourceClaimTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func priorityClass(name string) *schedulingv1.PriorityClass {
	return &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: 1000}
}

// eventually polls cond; the informers deliver events asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}

func TestWatcherFactsAreUnknownUntilSyncedThenFollowTheCluster(t *testing.T) {
	client := fake.NewClientset(runtimeClass("nvidia"))
	client.Resources = []*metav1.APIResourceList{{GroupVersion: resourcev1.SchemeGroupVersion.String()}}
	w := NewWatcher(client, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if f := w.Facts(); f.Known || w.Synced() {
		t.Fatalf("facts before the caches started: %+v, synced %v", f, w.Synced())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	eventually(t, "synced", w.Synced)
	if f := w.Facts(); !f.Known || !f.RuntimeClasses["nvidia"] || len(f.PriorityClasses) != 0 {
		t.Fatalf("facts after sync: %+v", f)
	}

	if _, err := client.SchedulingV1().PriorityClasses().Create(ctx, priorityClass("gpu-high"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new PriorityClass is seen", func() bool { return w.Facts().PriorityClasses["gpu-high"] })
	if err := client.NodeV1().RuntimeClasses().Delete(ctx, "nvidia", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a deleted RuntimeClass is gone", func() bool { return !w.Facts().RuntimeClasses["nvidia"] })
	if _, err := client.ResourceV1().ResourceClaimTemplates("ml").Create(ctx, claimTemplate("ml", "single-gpu"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new template is seen under namespace/name", func() bool { return w.Facts().ResourceClaimTemplates["ml/single-gpu"] })
}

func TestLookListsBothKindsSorted(t *testing.T) {
	client := fake.NewClientset(runtimeClass("nvidia"), runtimeClass("kata"), priorityClass("gpu-high"), claimTemplate("ml", "single-gpu"))
	s, err := Look(context.Background(), client)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.RuntimeClasses, ",") != "kata,nvidia" || strings.Join(s.PriorityClasses, ",") != "gpu-high" ||
		strings.Join(s.ResourceClaimTemplates, ",") != "ml/single-gpu" {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestReadSnapshot(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f, err := ReadSnapshot(write("ok.yaml", "runtimeClasses: [nvidia]\npriorityClasses: []\n"))
	if err != nil || !f.Known || !f.RuntimeClasses["nvidia"] || len(f.PriorityClasses) != 0 {
		t.Fatalf("facts %+v, err %v", f, err)
	}
	if _, err := ReadSnapshot(write("typo.yaml", "runtimeClass: [nvidia]\n")); err == nil || !strings.Contains(err.Error(), "runtimeClass") {
		t.Fatalf("a misspelt key must be refused, got %v", err)
	}
}

func TestWatcherWithoutTheDRAAPISyncsAndKnowsNoTemplates(t *testing.T) {
	// No resource.k8s.io/v1 in discovery: a cluster older than 1.34. An informer on it would
	// never sync and keep the server unready.
	client := fake.NewClientset(runtimeClass("nvidia"))
	// As the API server answers for a resource it does not serve.
	client.PrependReactor("*", "resourceclaimtemplates", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(resourcev1.Resource("resourceclaimtemplates"), "")
	})
	w := NewWatcher(client, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	eventually(t, "synced without the DRA API", w.Synced)
	if s, err := Look(ctx, client); err != nil || len(s.ResourceClaimTemplates) != 0 || len(s.RuntimeClasses) != 1 {
		t.Fatalf("offline look without the DRA API: %+v, %v", s, err)
	}
	if f := w.Facts(); !f.Known || !f.RuntimeClasses["nvidia"] || f.ResourceClaimTemplates == nil || len(f.ResourceClaimTemplates) != 0 {
		t.Fatalf("facts without the DRA API: %+v", f)
	}
}
