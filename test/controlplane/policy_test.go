package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/audit"
	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/policy"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

const (
	policyShapes  = 200 // Pod shapes of the corpus generator (the first of its sequence)
	policyNSLabel = "test." + domain + "/policy"
)

// The two backends agree: every generated Pod shape of the corpus, with every shipped profile
// that compiles and its enforce-everything variant, alone and (every other shape) with the
// sidecar webhook adding a container after the mutation (reinvocation), is created (dry run,
// which runs admission fully) once in a namespace served by the ai-webhook binary and once in a
// namespace served by the compiled MutatingAdmissionPolicies. The stored Pods must be equal
// field by field once names, UIDs, timestamps and the namespace are dropped. Pods the webhook
// refuses (an unknown or disagreeing profile, an unreadable opt-out) are refused by the
// refusals ValidatingAdmissionPolicy with the same reason; opted-out Pods are left alone by both. The decision code
// behind --explain and audit finds nothing left to do on a Pod a policy mutated.
func TestPolicyBackendStoresTheSamePodsAsTheWebhook(t *testing.T) {
	requireControlPlane(t)
	start := time.Now()
	file, _ := corpusProfiles(t) // it logs what each enforce-everything variant enforces
	set, err := profile.Parse(file, domain)
	if err != nil {
		t.Fatalf("load the corpus profiles: %v", err)
	}
	viaWebhook, viaPolicy, served := startBothBackends(t, file, set)

	shapes := generateShapes(rand.New(rand.NewPCG(corpusSeed, 1)), policyShapes)
	jobs := corpusJobs(shapes, served)
	type outcome struct {
		pod *corev1.Pod
		err error
	}
	hook, pol := make([]outcome, len(jobs)), make([]outcome, len(jobs))
	parallel(len(jobs), func(i int) {
		sent := jobs[i].shape.podFor(jobs[i].variant, jobs[i].sidecar)
		hook[i].pod, hook[i].err = createPod(viaWebhook, sent.DeepCopy(), true)
		pol[i].pod, pol[i].err = createPod(viaPolicy, sent, true)
	})

	keys := profile.KeysFor(domain)
	counts := map[string]int{}
	var diffs []string
	var policyServed []corev1.Pod
	for i, j := range jobs {
		mode := "alone"
		if j.sidecar {
			mode = "with sidecar"
		}
		where := fmt.Sprintf("%s %s (%s)", j.shape.name, j.variant, mode)
		predicted := j.shape.podFor(j.variant, j.sidecar)
		profile.DefaultPod(predicted)
		res, wantErr := inject.Mutate(predicted, set, keys)
		var refusal *inject.RefusedError
		switch {
		case errors.As(wantErr, &refusal):
			switch {
			case hook[i].err == nil:
				diffs = append(diffs, where+": the webhook admitted a Pod the injector refuses")
			case pol[i].err == nil:
				diffs = append(diffs, where+": the policies admitted a Pod the webhook refuses: "+refusal.Reason)
			case !strings.Contains(pol[i].err.Error(), refusal.Reason):
				diffs = append(diffs, fmt.Sprintf("%s: the policies refused with %v, want the injector's reason %q", where, pol[i].err, refusal.Reason))
			default:
				counts["refused by both, with the injector's reason: "+refusalKind(refusal.Reason)]++
			}
			continue
		case hook[i].err != nil || pol[i].err != nil:
			diffs = append(diffs, fmt.Sprintf("%s: webhook: %v; policy: %v", where, hook[i].err, pol[i].err))
			continue
		}
		if d := storedDiff(hook[i].pod, pol[i].pod); d != "" {
			diffs = append(diffs, fmt.Sprintf("%s: stored Pods differ (-webhook +policy):\n%s\n      features: %s", where, d, j.shape.describe()))
			continue
		}
		if res.Profile != nil {
			policyServed = append(policyServed, *pol[i].pod)
			// What --explain and audit decide on a Pod the policy admitted: nothing left to do.
			if again, err := inject.Mutate(pol[i].pod.DeepCopy(), set, keys); err != nil || len(again.Patch) > 0 {
				diffs = append(diffs, fmt.Sprintf("%s: the injector would still change the policy's Pod: %v %v", where, err, again.Patch))
			}
		}
		switch {
		case res.Profile == nil:
			counts["equal, untouched: "+res.Reason]++
		case j.sidecar:
			counts["equal, mutated, with a container added after the profile"]++
		default:
			counts["equal, mutated"]++
		}
	}
	if rep := audit.Run(audit.Input{Set: set, Keys: keys, Pods: policyServed}); len(rep.Groups) > 0 {
		diffs = append(diffs, fmt.Sprintf("audit lists %d workloads of the %d Pods the policies mutated, first: %+v", len(rep.Groups), len(policyServed), rep.Groups[0]))
	}
	if len(diffs) > 0 {
		var all []string
		for _, d := range diffs {
			all = append(all, strings.SplitN(d, "\n", 2)[0])
		}
		shown := diffs[:min(len(diffs), 6)]
		t.Errorf("%d of %d creates differ between the backends:\n  %s\nthe first %d in full:\n%s", len(diffs), len(jobs),
			strings.Join(all, "\n  "), len(shown), strings.Join(shown, "\n"))
	}
	var lines []string
	for k, n := range counts {
		lines = append(lines, fmt.Sprintf("  %5d %s", n, k))
	}
	sort.Strings(lines)
	t.Logf("policy vs webhook: %d shapes x %d profiles (%s), %d creates per backend in %v:\n%s",
		len(shapes), len(served), strings.Join(served, ", "), len(jobs), time.Since(start).Round(time.Millisecond), strings.Join(lines, "\n"))
}

// startBothBackends serves the profiles of file through the ai-webhook binary in one new
// namespace and through their compiled policies in another, with the sidecar webhook in both,
// and returns the namespaces and the profiles the policies serve once every one is active.
func startBothBackends(t *testing.T, file []byte, set *profile.Set) (viaWebhook, viaPolicy string, served []string) {
	t.Helper()
	opts := policy.Options{Domain: domain, FailurePolicy: admissionregistrationv1.Fail,
		NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{policyNSLabel: "true"}}}
	compiled, refused := policy.CompileSet(set, opts)
	for _, r := range refused {
		t.Logf("refused (served by the webhook only): %v", r)
	}

	for _, c := range compiled {
		served = append(served, strings.TrimPrefix(c.Policy.Name, policy.Name(policy.DefaultInstance, "")))
	}
	if len(served) == 0 {
		t.Fatalf("none of %v compiles", set.Names())
	}
	createCorpusClasses(t)
	startCorpusWebhook(t, file)
	startTestWebhook(t, sidecarService, sidecarAddress, sidecarPort, addSidecar)
	installWebhook(t, sidecarWebhookConfig())
	installWebhook(t, corpusWebhookConfig())
	for _, c := range compiled {
		installPolicy(t, c)
	}
	installRefusals(t, set, opts)
	viaWebhook = newNamespace(t, map[string]string{corpusNSLabel: "true"})
	viaPolicy = newNamespace(t, map[string]string{policyNSLabel: "true"})
	// The API server loads each policy on its own: probe every one.
	for _, ns := range []string{viaWebhook, viaPolicy} {
		for _, v := range served {
			cluster.Eventually(t, 30*time.Second, "the API server to apply "+v+" and the sidecar in "+ns, func() error {
				p, err := createPod(ns, trainingPod("probe", optInLabel(v), withSidecarLabel), true)
				if err != nil {
					return err
				}
				if !strings.HasPrefix(p.Annotations[injectedKey], v+profile.StampSep) || len(p.Spec.Containers) != 2 {
					return fmt.Errorf("probe came back with %s=%q and containers %v", injectedKey, p.Annotations[injectedKey], containerNames(p))
				}
				return nil
			})
		}
	}

	return viaWebhook, viaPolicy, served
}

// installRefusals creates the refusals ValidatingAdmissionPolicy and its binding, deleted when
// the test ends.
func installRefusals(t *testing.T, set *profile.Set, o policy.Options) {
	t.Helper()
	ctx := context.Background()
	api := fx.client.AdmissionregistrationV1()
	vap, bind := policy.Refusals(set, o)
	if _, err := api.ValidatingAdmissionPolicies().Create(ctx, vap, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ValidatingAdmissionPolicy: %v", err)
	}
	t.Cleanup(func() {
		_ = api.ValidatingAdmissionPolicies().Delete(context.Background(), vap.Name, metav1.DeleteOptions{})
	})
	if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ValidatingAdmissionPolicyBinding: %v", err)
	}
	t.Cleanup(func() {
		_ = api.ValidatingAdmissionPolicyBindings().Delete(context.Background(), bind.Name, metav1.DeleteOptions{})
	})
}

// installPolicy creates a compiled policy and its binding, deleted when the test ends.
func installPolicy(t *testing.T, c *policy.Compiled) {
	t.Helper()
	ctx := context.Background()
	api := fx.client.AdmissionregistrationV1()
	if _, err := api.MutatingAdmissionPolicies().Create(ctx, c.Policy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create MutatingAdmissionPolicy %s: %v", c.Policy.Name, err)
	}
	t.Cleanup(func() {
		if err := api.MutatingAdmissionPolicies().Delete(context.Background(), c.Policy.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete MutatingAdmissionPolicy %s: %v", c.Policy.Name, err)
		}
	})
	if _, err := api.MutatingAdmissionPolicyBindings().Create(ctx, c.Binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create MutatingAdmissionPolicyBinding %s: %v", c.Binding.Name, err)
	}
	t.Cleanup(func() {
		if err := api.MutatingAdmissionPolicyBindings().Delete(context.Background(), c.Binding.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete MutatingAdmissionPolicyBinding %s: %v", c.Binding.Name, err)
		}
	})
}

// storedDiff compares two stored Pods field by field, as JSON, after dropping what differs
// between any two creates: name, namespace, UID, timestamps, resource version.
func storedDiff(a, b *corev1.Pod) string {
	na, nb := comparable(a), comparable(b)
	ja, _ := json.Marshal(na)
	jb, _ := json.Marshal(nb)
	if string(ja) == string(jb) {
		return ""
	}
	return diff.Diff(na, nb)
}

func comparable(p *corev1.Pod) *corev1.Pod {
	c := p.DeepCopy()
	c.Name, c.GenerateName, c.Namespace, c.UID, c.ResourceVersion = "", "", "", "", ""
	c.CreationTimestamp = metav1.Time{}
	c.ManagedFields = nil
	return c
}
