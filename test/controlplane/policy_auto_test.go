package controlplane

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/ai-webhook/ai-webhook/infra/webhookstack"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/policy"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

const (
	autoShapes   = 60
	autoNSLabel  = "test." + domain + "/auto"
	autoHookName = "auto." + domain
)

// backend auto: the profiles that compile are served by their policies and the rest by the
// webhook, whose match conditions (webhookstack.WebhookMatchConditions) skip every Pod a policy
// takes. Every Pod of the corpus sample (all shipped profiles and their enforce-everything
// variants, the DRA ones served by the webhook only) is stored as the webhook alone stores it,
// and the API server calls the webhook exactly for the Pods no policy takes.
func TestPolicyAutoBackendHandlesEachPodOnce(t *testing.T) {
	requireControlPlane(t)
	file, variants := corpusProfiles(t)
	set, err := profile.Parse(file, domain)
	if err != nil {
		t.Fatal(err)
	}
	cfg := webhookstack.Config{Domain: domain, Profiles: string(file), Backend: webhookstack.BackendAuto, Namespace: webhookNamespace,
		FailurePolicy: admissionregistrationv1.Fail, NamespaceSelector: webhookstack.NamespaceSelector{Mode: webhookstack.ModeCustom,
			MatchLabels: map[string]string{autoNSLabel: "true"}}}
	sel := webhookstack.NamespaceSelectorFor(cfg.NamespaceSelector, domain, webhookNamespace)
	compiled, _ := policy.CompileSet(set, policy.Options{Domain: domain, FailurePolicy: admissionregistrationv1.Fail, NamespaceSelector: sel})
	var served []string
	for _, c := range compiled {
		served = append(served, strings.TrimPrefix(c.Policy.Name, policy.Name(policy.DefaultInstance, "")))
	}
	createCorpusClasses(t)
	startCorpusWebhook(t, file)
	installWebhook(t, corpusWebhookConfig())
	auto := stackWebhook(withService(corpusService), func(w *admissionregistrationv1.MutatingWebhook) {
		w.Name = autoHookName
		w.NamespaceSelector = &sel
		w.MatchConditions = webhookstack.WebhookMatchConditions(cfg)
	})
	auto.Name = "auto-ai-webhook"
	for _, c := range compiled {
		installPolicy(t, c)
	}
	installWebhook(t, auto)
	viaWebhook := newNamespace(t, map[string]string{corpusNSLabel: "true"})
	viaAuto := newNamespace(t, map[string]string{autoNSLabel: "true"})
	for _, v := range variants {
		for _, ns := range []string{viaWebhook, viaAuto} {
			cluster.Eventually(t, 30*time.Second, "the API server to apply "+v+" in "+ns, func() error {
				p, err := createPod(ns, trainingPod("probe", optInLabel(v)), true)
				if err != nil {
					return err
				}
				if !strings.HasPrefix(p.Annotations[injectedKey], v+profile.StampSep) {
					return fmt.Errorf("probe came back with %s=%q", injectedKey, p.Annotations[injectedKey])
				}
				return nil
			})
		}
	}

	shapes := generateShapes(rand.New(rand.NewPCG(corpusSeed, 2)), autoShapes)
	type job struct {
		shape   *podShape
		variant string
	}
	var jobs []job
	wantCalls := 0
	for i := range shapes {
		for _, v := range variants {
			jobs = append(jobs, job{&shapes[i], v})
			// A policy takes the Pod unless its profile does not compile or the Pod opts out,
			// or names its profile in a way the webhook refuses.
			if !slices.Contains(served, v) || slices.Contains([]string{"opt-out", "bad-inject", "disagree"}, shapes[i].optIn) {
				wantCalls++
			}
		}
	}
	calls := func() float64 {
		return scrapeMetrics(t).counter(metricWebhookRequests, map[string]string{"name": autoHookName})
	}
	before := calls()
	errs := make([]error, len(jobs))
	hook, got := make([]*corev1.Pod, len(jobs)), make([]*corev1.Pod, len(jobs))
	parallel(len(jobs), func(i int) {
		sent := jobs[i].shape.podFor(jobs[i].variant, false)
		var err1, err2 error
		hook[i], err1 = createPod(viaWebhook, sent.DeepCopy(), true)
		got[i], err2 = createPod(viaAuto, sent, true)
		if (err1 == nil) != (err2 == nil) {
			errs[i] = fmt.Errorf("webhook: %v; auto: %v", err1, err2)
		}
	})
	gotCalls := calls() - before
	var diffs []string
	for i, j := range jobs {
		where := fmt.Sprintf("%s %s", j.shape.name, j.variant)
		switch {
		case errs[i] != nil:
			diffs = append(diffs, where+": "+errs[i].Error())
		case hook[i] == nil:
		case storedDiff(hook[i], got[i]) != "":
			diffs = append(diffs, fmt.Sprintf("%s (-webhook +auto):\n%s", where, storedDiff(hook[i], got[i])))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%d of %d creates differ:\n%s", len(diffs), len(jobs), strings.Join(diffs[:min(len(diffs), 5)], "\n"))
	}
	if gotCalls != float64(wantCalls) {
		t.Errorf("the API server called the webhook %v times for %d creates, want %d (the Pods no policy takes)", gotCalls, len(jobs), wantCalls)
	}
	t.Logf("auto: %d shapes x %d profiles (%d served by policies): %d creates equal to the webhook's, %v webhook calls",
		len(shapes), len(variants), len(served), len(jobs), gotCalls)
}
