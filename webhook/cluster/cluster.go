// Package cluster reads, and keeps current, the cluster objects a profile may name:
// RuntimeClasses, PriorityClasses and ResourceClaimTemplates. It only reads (get, list, watch) and hands the injector
// plain names (inject.Facts); the decision stays in package inject.
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
)

// Client is the one way the binary reaches a cluster: from kubeconfig when it is set, else
// the in-cluster ServiceAccount (the Deployment mounts its token for exactly this). A
// non-empty userAgent names the caller to the API server.
func Client(kubeconfig, userAgent string) (kubernetes.Interface, error) {
	c, err := restConfig(kubeconfig, userAgent)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(c)
}

// MetadataClient is Client for metadata-only reads (PartialObjectMetadata: no spec or status).
func MetadataClient(kubeconfig, userAgent string) (metadata.Interface, error) {
	c, err := restConfig(kubeconfig, userAgent)
	if err != nil {
		return nil, err
	}
	return metadata.NewForConfig(c)
}

func restConfig(kubeconfig, userAgent string) (*rest.Config, error) {
	var c *rest.Config
	var err error
	if kubeconfig != "" {
		if c, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
	} else if c, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("no --kubeconfig and not in a cluster: %w", err)
	}
	if userAgent != "" {
		c.UserAgent = userAgent
	}
	return c, nil
}

// Watcher keeps the names of the cluster's RuntimeClasses, PriorityClasses and
// ResourceClaimTemplates (namespace/name) from three informers. Facts is cheap: a snapshot rebuilt only after an informer event.
type Watcher struct {
	factory  informers.SharedInformerFactory
	rc, pc   cache.SharedIndexInformer
	rct      cache.SharedIndexInformer
	log      *slog.Logger
	dirty    atomic.Bool
	snapshot atomic.Pointer[inject.Facts]
}

// NewWatcher sets up the informers; Start runs them. resync is the informers' resync period
// (a full re-list from the cache, not from the API server; the watch itself re-lists after an
// error).
func NewWatcher(client kubernetes.Interface, resync time.Duration, log *slog.Logger) *Watcher {
	w := &Watcher{factory: informers.NewSharedInformerFactory(client, resync), log: log}
	w.rc = w.factory.Node().V1().RuntimeClasses().Informer()
	w.pc = w.factory.Scheduling().V1().PriorityClasses().Informer()
	watched := map[string]cache.SharedIndexInformer{inject.KindRuntimeClass: w.rc, inject.KindPriorityClass: w.pc}
	// A cluster older than 1.34 serves no resource.k8s.io/v1: an informer on it would never sync
	// and keep the server unready. Without the API no template exists, so DRA claims are left
	// out (with their warning). Any other discovery error (the API server not reachable yet)
	// starts the informer, which retries like the others.
	if _, err := client.Discovery().ServerResourcesForGroupVersion(resourcev1.SchemeGroupVersion.String()); apierrors.IsNotFound(err) {
		log.Info("cluster facts: resource.k8s.io/v1 not served; DRA claims are never added", "err", err)
	} else {
		w.rct = w.factory.Resource().V1().ResourceClaimTemplates().Informer()
		watched[inject.KindResourceClaimTemplate] = w.rct
	}
	mark := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.dirty.Store(true) },
		UpdateFunc: func(any, any) {},
		DeleteFunc: func(any) { w.dirty.Store(true) },
	}
	for kind, inf := range watched {
		if _, err := inf.AddEventHandler(mark); err != nil {
			panic(err) // only fails on an informer that has stopped; these have not started
		}
		// The reflector re-lists and re-watches with backoff by itself; say why it had to.
		_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			log.Warn("cluster facts: watch failed, retrying; the last known names stay in use", "kind", kind, "err", err)
		})
	}
	// Strip everything but the name: the cache holds names, not objects (a template's spec too).
	for _, inf := range watched {
		_ = inf.SetTransform(func(o any) (any, error) {
			if m, ok := o.(metav1.Object); ok {
				m.SetManagedFields(nil)
				m.SetAnnotations(nil)
				m.SetLabels(nil)
			}
			if t, ok := o.(*resourcev1.ResourceClaimTemplate); ok {
				t.Spec = resourcev1.ResourceClaimTemplateSpec{}
			}
			return o, nil
		})
	}
	w.dirty.Store(true)
	return w
}

// Start runs the informers until ctx ends.
func (w *Watcher) Start(ctx context.Context) { w.factory.Start(ctx.Done()) }

// Synced reports whether every cache holds a complete first list.
func (w *Watcher) Synced() bool {
	return w.rc.HasSynced() && w.pc.HasSynced() && (w.rct == nil || w.rct.HasSynced())
}

// Facts returns the names as of the latest event; unknown (the zero Facts) until all caches
// synced. Once synced the cache stays in use while a broken watch is retried: classes change
// rarely, and a last-known name errs on the side of the state the operator last saw.
func (w *Watcher) Facts() inject.Facts {
	if !w.Synced() {
		return inject.Facts{}
	}
	if w.dirty.Swap(false) || w.snapshot.Load() == nil {
		f := inject.Facts{Known: true, RuntimeClasses: names(w.rc.GetStore()), PriorityClasses: names(w.pc.GetStore()),
			ResourceClaimTemplates: map[string]bool{}}
		if w.rct != nil {
			f.ResourceClaimTemplates = names(w.rct.GetStore())
		}
		w.snapshot.Store(&f)
	}
	return *w.snapshot.Load()
}

// names are the keys of a store: the names of cluster-scoped objects, namespace/name of
// namespaced ones.
func names(s cache.Store) map[string]bool { return setOf(s.ListKeys()) }

func setOf(names []string) map[string]bool {
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// Snapshot is the file form of the facts, for the offline inject --facts.
type Snapshot struct {
	RuntimeClasses  []string `json:"runtimeClasses"`
	PriorityClasses []string `json:"priorityClasses"`
	// ResourceClaimTemplates are namespace/name.
	ResourceClaimTemplates []string `json:"resourceClaimTemplates,omitempty"`
}

// ReadSnapshot reads a snapshot file; unknown fields are refused so a typo is not a silent
// "no classes".
func ReadSnapshot(path string) (inject.Facts, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return inject.Facts{}, err
	}
	var s Snapshot
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return inject.Facts{}, fmt.Errorf("facts file %s: %w", path, err)
	}
	return s.Facts(), nil
}

// Facts are the snapshot's names, known.
func (s Snapshot) Facts() inject.Facts {
	return inject.Facts{Known: true, RuntimeClasses: setOf(s.RuntimeClasses), PriorityClasses: setOf(s.PriorityClasses),
		ResourceClaimTemplates: setOf(s.ResourceClaimTemplates)}
}

// Look lists the classes once, read-only, for the offline inject --kubeconfig.
func Look(ctx context.Context, client kubernetes.Interface) (Snapshot, error) {
	var s Snapshot
	rcs, err := client.NodeV1().RuntimeClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("list RuntimeClasses: %w", err)
	}
	for _, o := range rcs.Items {
		s.RuntimeClasses = append(s.RuntimeClasses, o.Name)
	}
	pcs, err := client.SchedulingV1().PriorityClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("list PriorityClasses: %w", err)
	}
	for _, o := range pcs.Items {
		s.PriorityClasses = append(s.PriorityClasses, o.Name)
	}
	rcts, err := client.ResourceV1().ResourceClaimTemplates(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsNotFound(err): // no resource.k8s.io/v1 (before 1.34): no templates
		rcts = &resourcev1.ResourceClaimTemplateList{}
	case err != nil:
		return s, fmt.Errorf("list ResourceClaimTemplates: %w", err)
	}
	for _, o := range rcts.Items {
		s.ResourceClaimTemplates = append(s.ResourceClaimTemplates, o.Namespace+"/"+o.Name)
	}
	slices.Sort(s.ResourceClaimTemplates)
	slices.Sort(s.RuntimeClasses)
	slices.Sort(s.PriorityClasses)
	return s, nil
}
