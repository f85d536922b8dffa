package cluster

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/ai-webhook/ai-webhook/webhook/audit"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

var podKeys = profile.KeysFor(profile.DefaultDomain)

func podsProfiles(t testing.TB) *profile.Set {
	t.Helper()
	set, err := profile.Parse([]byte("profiles:\n- {name: training, container: {env: [{name: A, value: b}]}}\n- {name: notebook, container: {env: [{name: C, value: d}]}}\n"), profile.DefaultDomain)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func podMeta(ns, name string, labels, annotations map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Annotations: annotations},
	}
}

// The watch counts, per profile, the Pods today's profiles would change, follows creates,
// updates and deletes, and forgets terminating Pods and Pods without the webhook's keys.
func TestPodDriftCountsOutOfDatePodsThroughTheWatch(t *testing.T) {
	set := podsProfiles(t)
	training, _ := set.Get("training")
	current := map[string]string{podKeys.Injected: training.Stamp}
	asks := func(p string) map[string]string { return map[string]string{podKeys.Profile: p} }
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	client := metadatafake.NewSimpleMetadataClient(scheme,
		podMeta("ml", "unstamped", asks("training"), nil),
		podMeta("ml", "old", asks("training"), map[string]string{podKeys.Injected: "training@0000000000"}),
		podMeta("ml", "current", asks("training"), current),
		podMeta("ml", "gone", asks("gone"), nil),
		podMeta("web", "plain", map[string]string{"app": "web"}, nil),
	)
	d := NewPodDrift(podKeys)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if got := d.OutOfDate(set); got != nil {
		t.Fatalf("before the first list: %v, want nil (no metric)", got)
	}
	d.Watch(ctx, client)
	want := func(what string, w map[string]int) {
		t.Helper()
		var got map[string]int
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if got = d.OutOfDate(set); maps.Equal(got, w) {
				return
			}
		}
		t.Fatalf("%s: counts %v, want %v", what, got, w)
	}
	want("first list", map[string]int{"training": 2, "notebook": 0, audit.OtherProfile: 1})
	if n := d.Len(); n != 4 {
		t.Errorf("kept %d Pods, want 4 (not the one without the webhook's keys)", n)
	}

	pods := client.Resource(podsResource).Namespace("ml")
	if _, err := pods.(metadatafake.MetadataClient).CreateFake(podMeta("ml", "nb", asks("notebook"), nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want("a new unstamped notebook Pod", map[string]int{"training": 2, "notebook": 1, audit.OtherProfile: 1})

	// A Pod's metadata changes (a controller relabels it): counted by its new keys.
	if _, err := pods.(metadatafake.MetadataClient).UpdateFake(podMeta("ml", "unstamped", asks("training"), current), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want("an update to the current stamp", map[string]int{"training": 1, "notebook": 1, audit.OtherProfile: 1})

	terminating := podMeta("ml", "old", asks("training"), map[string]string{podKeys.Injected: "training@0000000000"})
	terminating.DeletionTimestamp = &metav1.Time{}
	if _, err := pods.(metadatafake.MetadataClient).UpdateFake(terminating, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want("a terminating Pod left out", map[string]int{"training": 0, "notebook": 1, audit.OtherProfile: 1})

	if err := pods.Delete(ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want("a deleted Pod", map[string]int{"training": 0, "notebook": 1})

	// New profiles (a reload): the same cache, decided again.
	changed, err := profile.Parse([]byte("profiles:\n- {name: training, container: {env: [{name: A, value: changed}]}}\n"), profile.DefaultDomain)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.OutOfDate(changed); !maps.Equal(got, map[string]int{"training": 2, audit.OtherProfile: 1}) {
		t.Errorf("after a profile change: %v, want both training Pods stamped before it out of date and the notebook one under %s", got, audit.OtherProfile)
	}
}

// BenchmarkPodDriftMemory measures what the cache keeps for a cluster of 100,000 Pods, every
// one (all-ask) or a tenth (tenth-ask) asking for a profile (in 20 namespaces, under 4
// profiles, stamped with a few hashes), all carrying ordinary labels, annotations and an owner:
// heap bytes held after the list was stored and the listed objects dropped, per Pod, with an
// informer's store of the same metadata objects for comparison.
func BenchmarkPodDriftMemory(b *testing.B) {
	b.Run("all-ask", func(b *testing.B) { benchmarkPodDriftMemory(b, 1) })
	b.Run("tenth-ask", func(b *testing.B) { benchmarkPodDriftMemory(b, 10) })
}

func benchmarkPodDriftMemory(b *testing.B, every int) {
	const pods = 100_000
	list := func() []any {
		out := make([]any, pods)
		for i := range out {
			labels := map[string]string{"app.kubernetes.io/name": fmt.Sprintf("app-%d", i%500), "pod-template-hash": fmt.Sprintf("%010x", i/10)}
			annotations := map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-30T10:00:00Z"}
			if i%every == 0 {
				p := []string{"pytorch-training", "llm-inference", "notebook", "pytorch-training-dra"}[i/10%4]
				labels[podKeys.Profile] = p
				annotations[podKeys.Injected] = fmt.Sprintf("%s@%010x", p, i/10%3)
			}
			m := podMeta(fmt.Sprintf("team-%02d", i%20), fmt.Sprintf("workload-%05d-%010x-abcde", i/10, i), labels, annotations)
			m.UID = "0f3c2a1e-7b7d-4c1e-9a55-1c2b3d4e5f60"
			m.ResourceVersion = fmt.Sprint(1000000 + i)
			m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "workload", UID: "u", Controller: new(true)}}
			out[i] = m
		}
		return out
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	set := podsProfiles(b)
	var perPod, streamedPerPod, storePerPod float64
	for b.Loop() {
		// The listed objects are garbage once stored: what stays is the store's.
		before := heap()
		d := NewPodDrift(podKeys)
		if err := d.Replace(list(), "1"); err != nil {
			b.Fatal(err)
		}
		perPod = float64(int64(heap())-int64(before)) / pods
		n := 0
		for _, c := range d.OutOfDate(set) {
			n += c
		}
		if n != pods/every { // none is current under set
			b.Fatalf("%d Pods out of date, want %d", n, pods/every)
		}
		runtime.KeepAlive(d)

		// While the first list streams in, the reflector holds it in a store of its own,
		// through d's Transformer.
		before = heap()
		streamed := cache.NewStore(cache.MetaNamespaceKeyFunc, cache.WithTransformer(d.Transformer()))
		if err := streamed.Replace(list(), "1"); err != nil {
			b.Fatal(err)
		}
		streamedPerPod = float64(int64(heap())-int64(before)) / pods
		runtime.KeepAlive(streamed)

		before = heap()
		store := cache.NewStore(cache.MetaNamespaceKeyFunc)
		if err := store.Replace(list(), "1"); err != nil {
			b.Fatal(err)
		}
		storePerPod = float64(int64(heap())-int64(before)) / pods
		runtime.KeepAlive(store)
	}
	b.ReportMetric(perPod, "bytes/pod")
	b.ReportMetric(streamedPerPod, "first-list-bytes/pod")
	b.ReportMetric(storePerPod, "informer-bytes/pod")
}
