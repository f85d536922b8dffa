package audit

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// From labels and annotations alone, OutOfDate decides as Run does on the whole Pod (for Pods
// that name their profile or carry a stamp), and counts under the profile, or OtherProfile.
func TestOutOfDateFromMetadataDecidesAsRun(t *testing.T) {
	set := testSet(t)
	training, _ := set.Get("training")
	annotated := func(k, v string) podOpt { return func(p *corev1.Pod) { p.Annotations[k] = v } }
	labelled := func(k, v string) podOpt { return func(p *corev1.Pod) { p.Labels[k] = v } }
	for _, tc := range []struct {
		name        string
		opts        []podOpt
		wantProfile string
		wantStale   bool
	}{
		{"no stamp although it asks for a profile", []podOpt{asks("training")}, "training", true},
		{"asks through the annotation", []podOpt{annotated(keys.Profile, "training")}, "training", true},
		{"current stamp", []podOpt{asks("training"), stamped(training.Stamp)}, "", false},
		{"old hash", []podOpt{asks("training"), stamped("training@0000000000")}, "training", true},
		{"another profile's stamp", []podOpt{asks("training"), stamped("notebook@0000000000")}, "training", true},
		{"names none, stamped by a profile that is not the default", []podOpt{stamped("training@0000000000")}, "", false},
		{"names none, stamped by a profile gone", []podOpt{stamped("gone@0000000000")}, OtherProfile, true},
		{"stamp of a profile gone", []podOpt{asks("training"), stamped("gone@0000000000")}, OtherProfile, true},
		{"asks for a profile the file lacks", []podOpt{asks("gone")}, OtherProfile, true},
		{"label and annotation disagree", []podOpt{asks("training"), annotated(keys.Profile, "notebook")}, OtherProfile, true},
		{"unrecognised inject value", []podOpt{asks("training"), labelled(keys.Inject, "maybe")}, OtherProfile, true},
		{"opted out by label", []podOpt{asks("training"), labelled(keys.Inject, "disabled")}, "", false},
		{"opted out by annotation", []podOpt{asks("training"), annotated(keys.Inject, "false")}, "", false},
		{"opted in changes nothing", []podOpt{asks("training"), labelled(keys.Inject, "enabled")}, "training", true},
		{"mirror pod", []podOpt{asks("training"), annotated("kubernetes.io/config.mirror", "x")}, "", false},
		{"no profile, no stamp", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pod("p", tc.opts...)
			m := MetaOf(p.Labels, p.Annotations, keys)
			name, stale := m.OutOfDate(set, keys)
			if name != tc.wantProfile || stale != tc.wantStale {
				t.Fatalf("OutOfDate = %q, %v; want %q, %v (meta %+v)", name, stale, tc.wantProfile, tc.wantStale, m)
			}
			if listed := len(Run(Input{Set: set, Keys: keys, Pods: []corev1.Pod{p}}).Groups) > 0; listed != stale {
				t.Errorf("Run on the whole Pod lists it: %v; from its metadata: %v", listed, stale)
			}
		})
	}
}

// A GPU Pod that names no profile got the default one: its stamp says which, and an old hash
// is counted under it.
func TestOutOfDateJudgesAPodNamingNoneByTheDefaultProfilesStamp(t *testing.T) {
	set, err := profile.Parse([]byte("defaultProfile: training\n"+profiles), profile.DefaultDomain)
	if err != nil {
		t.Fatal(err)
	}
	training, _ := set.Get("training")
	gpu := func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
	}
	for _, tc := range []struct {
		stamp string
		want  bool
	}{{"training@0000000000", true}, {training.Stamp, false}} {
		p := pod("p", gpu, stamped(tc.stamp))
		name, stale := MetaOf(p.Labels, p.Annotations, keys).OutOfDate(set, keys)
		if stale != tc.want || (stale && name != "training") {
			t.Errorf("stamp %s: OutOfDate = %q, %v; want training, %v", tc.stamp, name, stale, tc.want)
		}
		if listed := len(Run(Input{Set: set, Keys: keys, Pods: []corev1.Pod{p}}).Groups) > 0; listed != stale {
			t.Errorf("stamp %s: Run lists it: %v; from its metadata: %v", tc.stamp, listed, stale)
		}
	}
}

func TestMetaKeepsOnlyTheWebhooksKeys(t *testing.T) {
	p := pod("p", asks("training"), stamped("training@1"))
	p.Labels["app"], p.Annotations["checksum"] = "web", "abc"
	m := MetaOf(p.Labels, p.Annotations, keys)
	if want := (Meta{ProfileLabel: "training", Stamp: "training@1"}); m != want {
		t.Fatalf("MetaOf = %+v, want %+v", m, want)
	}
	plain := pod("q")
	plain.Labels["app"] = "web"
	if MetaOf(plain.Labels, plain.Annotations, keys).Relevant() {
		t.Error("a Pod without the webhook's keys is relevant")
	}
}
