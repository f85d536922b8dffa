package cluster

// A metadata-only watch of every Pod for ai_webhook_pods_out_of_date. Memory is what bounds
// it on a large cluster, so the watch feeds a store of its own instead of an informer's cache
// of objects: per Pod it keeps its namespace/name and a pointer to one shared entry per
// distinct audit.Meta (the few keys the webhook reads; Pods with none are not kept at all).
// The decision runs at scrape time once per distinct Meta, with the profiles in use then.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"

	"github.com/ai-webhook/ai-webhook/webhook/audit"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// podListPageSize pages the first list and re-lists when they are plain lists (no WatchList):
// the API server would otherwise answer with every Pod's metadata, managed fields included, in
// one response.
const podListPageSize = 500

// PodDrift counts the cluster's Pods by the keys the webhook reads.
type PodDrift struct {
	keys   profile.Keys
	synced atomic.Bool

	mu    sync.Mutex
	pods  map[string]*metaCount // namespace/name -> its Meta's entry
	metas map[audit.Meta]*metaCount
}

type metaCount struct {
	meta audit.Meta
	n    int
}

// NewPodDrift returns an empty PodDrift; Watch fills it.
func NewPodDrift(keys profile.Keys) *PodDrift {
	return &PodDrift{keys: keys, pods: map[string]*metaCount{}, metas: map[audit.Meta]*metaCount{}}
}

// Watch lists and watches the metadata of every Pod (get nothing, list and watch pods) until
// ctx ends, re-listing with backoff after an error as an informer does (client-go logs why);
// the last counts stay in use meanwhile.
func (d *PodDrift) Watch(ctx context.Context, client metadata.Interface) {
	pods := client.Resource(podsResource).Namespace(metav1.NamespaceAll)
	// With client-go's WatchList (streamed initial events, on by default) the first list
	// arrives object by object instead of as one response; the wrapper turns it off for a
	// client that cannot stream, as metadatainformer does.
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return pods.Watch(ctx, o)
		},
	}, client)
	r := cache.NewReflectorWithOptions(lw, &metav1.PartialObjectMetadata{}, d, cache.ReflectorOptions{Name: "pod metadata"})
	r.WatchListPageSize = podListPageSize
	go r.RunWithContext(ctx)
}

// Synced reports whether a first list has been stored.
func (d *PodDrift) Synced() bool { return d.synced.Load() }

// OutOfDate counts, per profile of set, the Pods it would change (audit.Meta.OutOfDate):
// every profile of set is present, zero or not, and audit.OtherProfile when any Pod counts
// there. Nil before the first list.
func (d *PodDrift) OutOfDate(set *profile.Set) map[string]int {
	if !d.Synced() || set == nil {
		return nil
	}
	out := map[string]int{}
	for _, n := range set.Names() {
		out[n] = 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for m, c := range d.metas {
		if name, stale := m.OutOfDate(set, d.keys); stale {
			out[name] += c.n
		}
	}
	return out
}

// Len is the number of Pods kept (those with a key the webhook reads).
func (d *PodDrift) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pods)
}

// podFacts is what is kept of a Pod while it is read: its key, whether it is being deleted and
// its audit.Meta. The reflector keys it through GetObjectMeta.
type podFacts struct {
	namespace, name string
	deleting        bool
	meta            audit.Meta
}

// GetObjectMeta implements metav1.ObjectMetaAccessor.
func (p *podFacts) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: p.namespace, Name: p.name}
}

func (p *podFacts) key() string { return p.namespace + "/" + p.name }

// facts reads a Pod as the watch delivers it (or as Transformer left it).
func (d *PodDrift) facts(obj any) (*podFacts, error) {
	switch o := obj.(type) {
	case *podFacts:
		return o, nil
	case *metav1.PartialObjectMetadata:
		return &podFacts{namespace: o.Namespace, name: o.Name, deleting: o.DeletionTimestamp != nil,
			meta: audit.MetaOf(o.Labels, o.Annotations, d.keys)}, nil
	case cache.DeletedFinalStateUnknown:
		return d.facts(o.Obj)
	}
	return nil, fmt.Errorf("pods out of date: got %T, want *v1.PartialObjectMetadata", obj)
}

// The reflector's store (cache.Store). Only the writes matter; the reads answer from the keys.

func (d *PodDrift) Add(obj any) error    { return d.put(obj) }
func (d *PodDrift) Update(obj any) error { return d.put(obj) }

func (d *PodDrift) Delete(obj any) error {
	f, err := d.facts(obj)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.drop(f.key())
	return nil
}

func (d *PodDrift) Replace(list []any, _ string) error {
	d.mu.Lock()
	d.pods, d.metas = map[string]*metaCount{}, map[audit.Meta]*metaCount{}
	d.mu.Unlock()
	for _, o := range list {
		if err := d.put(o); err != nil {
			return err
		}
	}
	d.synced.Store(true)
	return nil
}

func (d *PodDrift) List() []any {
	keys := d.ListKeys()
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out
}

func (d *PodDrift) ListKeys() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.pods))
	for k := range d.pods {
		out = append(out, k)
	}
	return out
}

func (d *PodDrift) Get(obj any) (any, bool, error) {
	f, err := d.facts(obj)
	if err != nil {
		return nil, false, err
	}
	return d.GetByKey(f.key())
}

func (d *PodDrift) GetByKey(key string) (any, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.pods[key]
	if !ok {
		return nil, false, nil
	}
	return c.meta, true, nil
}

func (d *PodDrift) Resync() error { return nil }

// Transformer makes the reflector keep, while the first list streams in (WatchList), each Pod
// as podFacts rather than its whole metadata.
func (d *PodDrift) Transformer() cache.TransformFunc {
	return func(obj any) (any, error) { return d.facts(obj) }
}

// put stores a Pod's Meta: a terminating Pod, or one without a key the webhook reads, is not kept.
func (d *PodDrift) put(obj any) error {
	f, err := d.facts(obj)
	if err != nil {
		return err
	}
	key := f.key()
	d.mu.Lock()
	defer d.mu.Unlock()
	if f.deleting || !f.meta.Relevant() {
		d.drop(key)
		return nil
	}
	if c, ok := d.pods[key]; ok {
		if c.meta == f.meta {
			return nil
		}
		d.drop(key)
	}
	c, ok := d.metas[f.meta]
	if !ok {
		c = &metaCount{meta: f.meta}
		d.metas[f.meta] = c
	}
	c.n++
	d.pods[key] = c
	return nil
}

// drop forgets a Pod; d.mu is held.
func (d *PodDrift) drop(key string) {
	c, ok := d.pods[key]
	if !ok {
		return
	}
	delete(d.pods, key)
	if c.n--; c.n == 0 {
		delete(d.metas, c.meta)
	}
}
