package audit

import (
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

const profiles = `
profiles:
- name: training
  container:
    env:
    - name: NCCL_DEBUG
      value: WARN
- name: notebook
  pod:
    labels:
      team: ml
`

var keys = profile.KeysFor(profile.DefaultDomain)

func testSet(t *testing.T) *profile.Set {
	t.Helper()
	set, err := profile.Parse([]byte(profiles), profile.DefaultDomain)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

type podOpt func(*corev1.Pod)

func pod(name string, opts ...podOpt) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml", Labels: map[string]string{}, Annotations: map[string]string{}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "x"}}},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func asks(name string) podOpt { return func(p *corev1.Pod) { p.Labels[keys.Profile] = name } }
func stamped(s string) podOpt { return func(p *corev1.Pod) { p.Annotations[keys.Injected] = s } }
func ownedBy(kind, name string, controller bool) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{Kind: kind, Name: name, Controller: ptr.To(controller)})
	}
}

// current is a Pod as the webhook admits it today.
func current(t *testing.T, set *profile.Set, p corev1.Pod) corev1.Pod {
	t.Helper()
	if _, err := inject.Mutate(&p, set, keys); err != nil {
		t.Fatal(err)
	}
	return p
}

func stampOf(t *testing.T, set *profile.Set, name string) string {
	p, ok := set.Get(name)
	if !ok {
		t.Fatalf("no profile %s", name)
	}
	return p.Stamp
}

func TestPodsAreListedOnlyWhenTodaysProfilesWouldChangeThem(t *testing.T) {
	set := testSet(t)
	tests := []struct {
		name string
		pod  corev1.Pod
		why  string // "" when the Pod is not listed
	}{
		{"a Pod admitted today is current", current(t, set, pod("p", asks("training"))), ""},
		{"a Pod asking for no profile is not listed", pod("p"), ""},
		{"an opted-out Pod is not listed", pod("p", asks("training"), func(p *corev1.Pod) { p.Annotations[keys.Inject] = "false" }), ""},
		{"a Pod asking for a profile without a stamp was admitted fail-open", pod("p", asks("training")), Unstamped},
		{"a stamp with another hash is an old profile", pod("p", asks("training"), stamped("training@0000")), OldHash},
		{"a stamp of another profile than the one asked for is old", pod("p", asks("training"), stamped(stampOf(t, set, "notebook"))), OldHash},
		{"a stamp naming a profile that is gone", pod("p", stamped("removed@1234")), ProfileGone},
		{"a Pod naming an unknown profile would be refused", pod("p", asks("nope")), WouldRefuse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Run(Input{Set: set, Keys: keys, Pods: []corev1.Pod{tt.pod}})
			if rep.Checked != 1 {
				t.Errorf("checked %d Pods, want 1", rep.Checked)
			}
			if tt.why == "" {
				if len(rep.Groups) != 0 {
					t.Fatalf("listed %+v, want nothing", rep.Groups)
				}
				return
			}
			if len(rep.Groups) != 1 || len(rep.Groups[0].Pods) != 1 {
				t.Fatalf("groups %+v, want one Pod", rep.Groups)
			}
			if got := rep.Groups[0].Pods[0].Why; got != tt.why {
				t.Errorf("why %q, want %q (%s)", got, tt.why, rep.Groups[0].Pods[0].Detail)
			}
		})
	}
}

func TestChangesAreTheRowsThatWouldChangeThePod(t *testing.T) {
	set := testSet(t)
	rep := Run(Input{Set: set, Keys: keys, Pods: []corev1.Pod{pod("p", asks("training"))}})
	if len(rep.Groups) != 1 {
		t.Fatalf("groups %+v", rep.Groups)
	}
	var env bool
	for _, it := range rep.Groups[0].Changes {
		if it.Action != inject.Applied && it.Action != inject.Enforced {
			t.Errorf("row %+v does not change the Pod", it)
		}
		env = env || (it.Field == "env" && it.Key == "NCCL_DEBUG")
	}
	if !env {
		t.Errorf("changes %+v lack the env variable", rep.Groups[0].Changes)
	}
}

func TestPodsAreGroupedByTheWorkloadToRoll(t *testing.T) {
	set := testSet(t)
	rs := Ref{Kind: "ReplicaSet", Namespace: "ml", Name: "web-5d8f"}
	job := Ref{Kind: "Job", Namespace: "ml", Name: "nightly-29000"}
	parents := map[Ref]Ref{
		rs:  {Kind: "Deployment", Namespace: "ml", Name: "web"},
		job: {Kind: "CronJob", Namespace: "ml", Name: "nightly"},
	}
	tests := []struct {
		name     string
		pods     []corev1.Pod
		workload Ref
		roll     string
		n        int
	}{
		{"a ReplicaSet's Pods under their Deployment", []corev1.Pod{
			pod("web-5d8f-b", asks("training"), ownedBy("ReplicaSet", "web-5d8f", true)),
			pod("web-5d8f-a", asks("training"), ownedBy("ReplicaSet", "web-5d8f", true)),
		}, Ref{"Deployment", "ml", "web"}, "kubectl rollout restart deployment/web -n ml", 2},
		{"a Job's Pod under its CronJob", []corev1.Pod{pod("nightly-29000-x", asks("training"), ownedBy("Job", "nightly-29000", true))},
			Ref{"CronJob", "ml", "nightly"}, "", 1},
		{"a StatefulSet is rolled", []corev1.Pod{pod("db-0", asks("training"), ownedBy("StatefulSet", "db", true))},
			Ref{"StatefulSet", "ml", "db"}, "kubectl rollout restart statefulset/db -n ml", 1},
		{"the controller owner wins over the first", []corev1.Pod{pod("x", asks("training"), ownedBy("Thing", "a", false), ownedBy("Other", "b", true))},
			Ref{"Other", "ml", "b"}, "", 1},
		{"a ReplicaSet without a Deployment is itself", []corev1.Pod{pod("r-1", asks("training"), ownedBy("ReplicaSet", "lonely", true))},
			Ref{"ReplicaSet", "ml", "lonely"}, "", 1},
		{"a bare Pod is its own workload", []corev1.Pod{pod("solo", asks("training"))},
			Ref{"Pod", "ml", "solo"}, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Run(Input{Set: set, Keys: keys, Pods: tt.pods, Parents: parents})
			if len(rep.Groups) != 1 {
				t.Fatalf("groups %+v, want one", rep.Groups)
			}
			g := rep.Groups[0]
			if g.Workload != tt.workload || len(g.Pods) != tt.n {
				t.Errorf("workload %v with %d Pods, want %v with %d", g.Workload, len(g.Pods), tt.workload, tt.n)
			}
			if tt.roll != "" && g.Roll != tt.roll {
				t.Errorf("roll %q, want %q", g.Roll, tt.roll)
			}
			if g.Roll == "" {
				t.Error("no roll advice")
			}
			for i := 1; i < len(g.Pods); i++ {
				if g.Pods[i-1].Name > g.Pods[i].Name {
					t.Errorf("Pods not in name order: %+v", g.Pods)
				}
			}
		})
	}
}

func TestNamespaceSelectorIsEvaluatedAsTheAPIServerDoes(t *testing.T) {
	optIn := &admissionregistrationv1.MutatingWebhook{NamespaceSelector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: keys.Inject, Operator: metav1.LabelSelectorOpIn, Values: []string{"enabled"}}},
	}}
	tests := []struct {
		name   string
		hook   *admissionregistrationv1.MutatingWebhook
		labels map[string]string
		want   bool
	}{
		{"no selector selects every namespace", &admissionregistrationv1.MutatingWebhook{}, nil, true},
		{"an opted-in namespace is selected", optIn, map[string]string{keys.Inject: "enabled"}, true},
		{"an unlabelled namespace is not", optIn, nil, false},
		{"another value is not", optIn, map[string]string{keys.Inject: "maybe"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Selects(tt.hook, tt.labels)
			if err != nil || got != tt.want {
				t.Errorf("Selects = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	bad := &admissionregistrationv1.MutatingWebhook{NamespaceSelector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Sometimes"}},
	}}
	if _, err := Selects(bad, nil); err == nil {
		t.Error("an invalid selector was accepted")
	}
}

func TestFindWebhookNamesWhatTheConfigurationHas(t *testing.T) {
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "c"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "a.example.com"}, {Name: "b.example.com"}}}
	if w, err := FindWebhook(cfg, "b.example.com"); err != nil || w.Name != "b.example.com" {
		t.Errorf("FindWebhook(b) = %v, %v", w, err)
	}
	for _, name := range []string{"", "c.example.com"} {
		if _, err := FindWebhook(cfg, name); err == nil {
			t.Errorf("FindWebhook(%q) chose one of two", name)
		}
	}
	one := &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: cfg.Webhooks[:1]}
	if w, err := FindWebhook(one, ""); err != nil || w.Name != "a.example.com" {
		t.Errorf("the only webhook was not chosen: %v, %v", w, err)
	}
}

func TestProfilesSourceFollowsProfilesFileToItsConfigMap(t *testing.T) {
	spec := func(args []string, mountPath string, items ...corev1.KeyToPath) *corev1.PodSpec {
		return &corev1.PodSpec{
			Containers: []corev1.Container{{Name: "server", Args: args,
				VolumeMounts: []corev1.VolumeMount{{Name: "tls", MountPath: "/etc/tls"}, {Name: "profiles", MountPath: mountPath}}}},
			Volumes: []corev1.Volume{
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}},
				{Name: "profiles", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "profiles-abc"}, Items: items}}},
			},
		}
	}
	tests := []struct {
		name            string
		spec            *corev1.PodSpec
		cm, key, domain string
		err             string
	}{
		{"the stack's layout", spec([]string{"serve", "--profiles-file=/etc/ai-webhook/profiles/profiles.yaml", "--domain=gpu.corp"}, "/etc/ai-webhook/profiles"),
			"profiles-abc", "profiles.yaml", "gpu.corp", ""},
		{"flags as separate words, mount path with a slash", spec([]string{"serve", "--profiles-file", "/p/x.yaml"}, "/p/"), "profiles-abc", "x.yaml", "", ""},
		{"an items mapping names the key", spec([]string{"--profiles-file=/p/x.yaml"}, "/p", corev1.KeyToPath{Key: "real", Path: "x.yaml"}), "profiles-abc", "real", "", ""},
		{"no --profiles-file", spec([]string{"serve"}, "/p"), "", "", "", "no --profiles-file"},
		{"a file on a Secret volume", spec([]string{"--profiles-file=/etc/tls/p.yaml"}, "/p"), "", "", "", "not on a ConfigMap volume"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm, key, domain, err := ProfilesSource(tt.spec, "")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || cm != tt.cm || key != tt.key || domain != tt.domain {
				t.Errorf("got %q %q %q %v, want %q %q %q", cm, key, domain, err, tt.cm, tt.key, tt.domain)
			}
		})
	}
}
