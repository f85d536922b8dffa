package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/audit"
	"github.com/ai-webhook/ai-webhook/webhook/policy"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// The stacks of the backend tests: each its own stack, instance, namespace and domain, so only
// its own policies (or webhook) match its Pods whatever else the cluster runs. The cluster-scoped
// policy names derive from the instance (<name>.<profile>, <name>.refusals), so neither stack
// touches the other's.
const (
	policyStack     = "backend-policy"
	policyName      = "ai-policy"
	policyDomain    = "policy-backend.example.com"
	policyPodsNS    = "e2e-policy-backend"
	autoStack       = "backend-auto"
	autoName        = "ai-auto"
	autoDomain      = "auto-backend.example.com"
	autoPodsNS      = "e2e-auto-backend"
	compiledProfile = "pytorch-training"
)

// TestPolicyBackendServesPodsWithNoServer runs `pulumi up` with backend policy on the local
// cluster: only MutatingAdmissionPolicies, their bindings and the refusals policy are created (no
// Namespace, Deployment, Service or Secret); a Pod asking for a compiled profile in a selected
// namespace is stored with the profile's settings and a current stamp, an opted-out Pod is
// untouched, a Pod asking for an unknown profile is refused with the webhook's reason.
func TestPolicyBackendServesPodsWithNoServer(t *testing.T) {
	ctx := context.Background()
	kube := env.cluster.Client
	must := failNowUnless(t)
	keys := profile.KeysFor(policyDomain)

	// Every profile must compile: the shipped examples without the DRA one.
	profiles := withoutProfile(t, string(profile.Examples), draProfile)
	set, err := profile.Parse([]byte(profiles), policyDomain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deployStack(t, policyStack, "destroy") })
	s := deployStack(t, policyStack, "up", "--config", "backend=policy", "--config", "name="+policyName,
		"--config", "namespace="+policyName, "--config", "domain="+policyDomain, "--config", "profiles="+profiles)

	must(t.Run("up creates only the policies, their bindings and the refusals policy", func(t *testing.T) {
		var want []string
		for _, n := range set.Names() {
			want = append(want, policy.Name(policyName, n))
		}
		slices.Sort(want)
		var got []string
		if l, ok := s.Outputs["policies"].([]any); ok {
			for _, v := range l {
				got = append(got, fmt.Sprint(v))
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("output policies = %v, want %v", got, want)
		}
		adm := kube.AdmissionregistrationV1()
		for _, n := range want {
			p, err := adm.MutatingAdmissionPolicies().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				t.Errorf("MutatingAdmissionPolicy %s: %v", n, err)
				continue
			}
			if p.Labels["app.kubernetes.io/instance"] != policyName {
				t.Errorf("MutatingAdmissionPolicy %s labels %v", n, p.Labels)
			}
			b, err := adm.MutatingAdmissionPolicyBindings().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				t.Errorf("MutatingAdmissionPolicyBinding %s: %v", n, err)
			} else if b.Spec.PolicyName != n {
				t.Errorf("binding %s binds %q", n, b.Spec.PolicyName)
			}
		}
		if _, err := adm.ValidatingAdmissionPolicies().Get(ctx, policy.RefusalsName(policyName), metav1.GetOptions{}); err != nil {
			t.Errorf("ValidatingAdmissionPolicy %s: %v", policy.RefusalsName(policyName), err)
		}
		if _, err := adm.ValidatingAdmissionPolicyBindings().Get(ctx, policy.RefusalsName(policyName), metav1.GetOptions{}); err != nil {
			t.Errorf("ValidatingAdmissionPolicyBinding %s: %v", policy.RefusalsName(policyName), err)
		}
		// No server: nothing of the instance but admission policies.
		if _, err := kube.CoreV1().Namespaces().Get(ctx, policyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s: %v, want none", policyName, err)
		}
		checkNoServer(t, kube, policyName, policyDomain)
		for _, st := range s.Steps {
			if !strings.HasPrefix(st.Type, "kubernetes:admissionregistration.k8s.io/v1:") && !strings.HasPrefix(st.Type, "pulumi:") &&
				!strings.HasPrefix(st.Type, "ai-webhook:") {
				t.Errorf("up step %s %s: a resource other than an admission policy", st.Op, st.Type)
			}
		}
	}))

	must(t.Run("the policies mutate a profile Pod in a selected namespace, skip an opted-out one, refuse an unknown profile", func(t *testing.T) {
		createNamespace(t, kube, policyPodsNS, map[string]string{keys.Inject: "enabled"})
		t.Cleanup(func() { deleteNamespace(kube, policyPodsNS) })
		waitStamped(t, kube, policyPodsNS, keys, compiledProfile)

		pod, err := createDomainPod(ctx, kube, policyPodsNS, "compiled", keys, compiledProfile, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		checkPytorchTraining(t, pod, keys, set)

		optedOut, err := createDomainPod(ctx, kube, policyPodsNS, "opted-out", keys, compiledProfile, map[string]string{keys.Inject: "disabled"}, false)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := optedOut.Annotations[keys.Injected]; ok {
			t.Errorf("opted-out Pod stamped %q", v)
		}
		// Nothing of the profile (the API server's own defaults, a token mount and not-ready
		// tolerations, are there).
		c := optedOut.Spec.Containers[0]
		_, gpu := c.Resources.Limits["nvidia.com/gpu"]
		if optedOut.Spec.RuntimeClassName != nil || len(c.Env) != 0 || gpu || len(optedOut.Spec.NodeSelector) != 0 ||
			slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/dev/shm" }) ||
			slices.ContainsFunc(optedOut.Spec.Tolerations, func(tl corev1.Toleration) bool { return tl.Key == "nvidia.com/gpu" }) {
			t.Errorf("opted-out Pod changed: runtimeClassName %v, env %v, limits %v, nodeSelector %v, mounts %v, tolerations %v",
				optedOut.Spec.RuntimeClassName, c.Env, c.Resources.Limits, optedOut.Spec.NodeSelector, c.VolumeMounts, optedOut.Spec.Tolerations)
		}

		_, err = createDomainPod(ctx, kube, policyPodsNS, "unknown", keys, "no-such-profile", nil, true)
		if want := `unknown profile "no-such-profile" in ` + keys.Profile; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a Pod asking for an unknown profile: err %v, want refused with %q", err, want)
		}
	}))

	must(t.Run("destroy removes every policy", func(t *testing.T) {
		deployStack(t, policyStack, "destroy")
		for _, n := range set.Names() {
			if _, err := kube.AdmissionregistrationV1().MutatingAdmissionPolicies().Get(ctx, policy.Name(policyName, n), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("MutatingAdmissionPolicy %s after destroy: %v", policy.Name(policyName, n), err)
			}
		}
		if _, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, policy.RefusalsName(policyName), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ValidatingAdmissionPolicy %s after destroy: %v", policy.RefusalsName(policyName), err)
		}
	}))
}

// TestAutoBackendSendsEachPodToOneBackend runs `pulumi up` with backend auto and the shipped
// profiles, of which the DRA one does not compile: a Pod asking for a compiled profile is
// mutated by its policy and the API server never calls the webhook for it (its
// apiserver_admission_webhook_admission_duration_seconds_count for the webhook stays put), a Pod
// asking for the DRA profile is mutated by the webhook (the count goes up).
func TestAutoBackendSendsEachPodToOneBackend(t *testing.T) {
	ctx := context.Background()
	kube := env.cluster.Client
	must := failNowUnless(t)
	keys := profile.KeysFor(autoDomain)
	set, err := profile.Parse(profile.Examples, autoDomain)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { deployStack(t, autoStack, "destroy") })
	s := deployStack(t, autoStack, "up", "--config", "backend=auto", "--config", "image=ai-webhook:dev",
		"--config", "name="+autoName, "--config", "namespace="+autoName, "--config", "domain="+autoDomain)
	if got := s.Outputs["mutating_webhook_name"]; got != autoName {
		t.Fatalf("output mutating_webhook_name = %v, want %s", got, autoName)
	}
	mwc, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, autoName, metav1.GetOptions{})
	if err != nil || len(mwc.Webhooks) != 1 {
		t.Fatalf("webhook configuration %s: %v", autoName, err)
	}
	webhook := mwc.Webhooks[0].Name
	if _, err := kube.AdmissionregistrationV1().MutatingAdmissionPolicies().Get(ctx, policy.Name(autoName, compiledProfile), metav1.GetOptions{}); err != nil {
		t.Fatalf("MutatingAdmissionPolicy of %s: %v", compiledProfile, err)
	}
	if _, err := kube.AdmissionregistrationV1().MutatingAdmissionPolicies().Get(ctx, policy.Name(autoName, draProfile), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("MutatingAdmissionPolicy of %s, which needs the webhook: %v", draProfile, err)
	}

	createNamespace(t, kube, autoPodsNS, map[string]string{keys.Inject: "enabled"})
	t.Cleanup(func() { deleteNamespace(kube, autoPodsNS) })
	// Both backends serving: the webhook's Pods ready and both configurations in the API
	// server's informers.
	waitStamped(t, kube, autoPodsNS, keys, draProfile)
	waitStamped(t, kube, autoPodsNS, keys, compiledProfile)

	must(t.Run("a compiled-profile Pod is mutated by its policy and never reaches the webhook", func(t *testing.T) {
		before := webhookAdmissions(t, kube, webhook)
		for i := range 3 {
			pod, err := createDomainPod(ctx, kube, autoPodsNS, fmt.Sprintf("compiled-%d", i), keys, compiledProfile, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			checkPytorchTraining(t, pod, keys, set)
		}
		if after := webhookAdmissions(t, kube, webhook); after != before {
			t.Errorf("the API server called webhook %s %v times for Pods its policy serves", webhook, after-before)
		}
	}))

	must(t.Run("a webhook-only profile Pod is mutated by the webhook", func(t *testing.T) {
		before := webhookAdmissions(t, kube, webhook)
		pod, err := createDomainPod(ctx, kube, autoPodsNS, "dra", keys, draProfile, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if after := webhookAdmissions(t, kube, webhook); after <= before {
			t.Errorf("webhook %s admissions %v before and %v after a %s Pod: not called", webhook, before, after, draProfile)
		}
		checkCurrentStamp(t, pod, keys, set, draProfile)
		if rc := pod.Spec.ResourceClaims; len(rc) != 1 || rc[0].Name != draClaim {
			t.Errorf("resourceClaims %+v, want the webhook's %s claim", rc, draClaim)
		}
		if c := pod.Spec.Containers[0].Resources.Claims; len(c) != 1 || c[0].Name != draClaim {
			t.Errorf("container claims %+v, want [%s]", c, draClaim)
		}
	}))
}

// withoutProfile cuts the named profile's entry out of a profiles document.
func withoutProfile(t *testing.T, doc, name string) string {
	t.Helper()
	start := strings.Index(doc, "\n- name: "+name+"\n")
	if start < 0 {
		t.Fatalf("no profile %s in the document", name)
	}
	end := strings.Index(doc[start+1:], "\n- name: ")
	if end < 0 {
		return doc[:start+1]
	}
	return doc[:start] + doc[start+1+end:]
}

// checkNoServer checks that the instance runs nothing: no Deployment, Service, Secret or webhook
// configuration, and that nothing answers for the domain.
func checkNoServer(t *testing.T, kube kubernetes.Interface, instance, domain string) {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + instance}
	if l, err := kube.AppsV1().Deployments("").List(ctx, sel); err != nil || len(l.Items) != 0 {
		t.Errorf("Deployments of %s: %d (%v)", instance, len(l.Items), err)
	}
	if l, err := kube.CoreV1().Services("").List(ctx, sel); err != nil || len(l.Items) != 0 {
		t.Errorf("Services of %s: %d (%v)", instance, len(l.Items), err)
	}
	if l, err := kube.CoreV1().Secrets("").List(ctx, sel); err != nil || len(l.Items) != 0 {
		t.Errorf("Secrets of %s: %d (%v)", instance, len(l.Items), err)
	}
	mwcs, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mwcs.Items {
		if m.Name == instance || slices.ContainsFunc(m.Webhooks, func(w admissionregistrationv1.MutatingWebhook) bool { return w.Name == domain }) {
			t.Errorf("webhook configuration %s serves %s", m.Name, domain)
		}
	}
}

// createDomainPod creates a Pod with one container "trainer" (8 CPUs, 32Gi) asking for profile p
// under keys' profile label, with the given annotations.
func createDomainPod(ctx context.Context, kube kubernetes.Interface, ns, name string, keys profile.Keys, p string, annotations map[string]string, dryRun bool) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-", Labels: map[string]string{keys.Profile: p}, Annotations: annotations},
		Spec:       trainerSpec(),
	}
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return kube.CoreV1().Pods(ns).Create(ctx, pod, opts)
}

// waitStamped waits until a dry-run Pod of ns asking for p comes back stamped (the API server
// learns of policies and webhook configurations through informers).
func waitStamped(t *testing.T, kube kubernetes.Interface, ns string, keys profile.Keys, p string) {
	t.Helper()
	cluster.Eventually(t, 2*time.Minute, "Pods of "+ns+" asking for "+p+" to be stamped", func() error {
		pod, err := createDomainPod(context.Background(), kube, ns, "probe", keys, p, nil, true)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(pod.Annotations[keys.Injected], p+"@") {
			return fmt.Errorf("annotations %v", pod.Annotations)
		}
		return nil
	})
}

// checkPytorchTraining checks a trainer Pod (8 CPUs, 32Gi) carries the shipped pytorch-training
// settings and the stamp the decision code finds current.
func checkPytorchTraining(t *testing.T, pod *corev1.Pod, keys profile.Keys, set *profile.Set) {
	t.Helper()
	checkCurrentStamp(t, pod, keys, set, compiledProfile)
	if pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName != "nvidia" {
		t.Errorf("pod %s: runtimeClassName %v, want nvidia", pod.Name, pod.Spec.RuntimeClassName)
	}
	if pod.Spec.NodeSelector["nvidia.com/gpu.present"] != "true" {
		t.Errorf("pod %s: nodeSelector %v", pod.Name, pod.Spec.NodeSelector)
	}
	if !slices.ContainsFunc(pod.Spec.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Key == "nvidia.com/gpu" && tl.Operator == corev1.TolerationOpExists && tl.Effect == corev1.TaintEffectNoSchedule
	}) {
		t.Errorf("pod %s: tolerations %+v", pod.Name, pod.Spec.Tolerations)
	}
	c := pod.Spec.Containers[0]
	if q, ok := c.Resources.Limits["nvidia.com/gpu"]; !ok || q.String() != "1" {
		t.Errorf("pod %s: limits %v, want nvidia.com/gpu 1", pod.Name, c.Resources.Limits)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for k, v := range map[string]string{"NCCL_DEBUG": "WARN", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "8"} {
		if env[k] != v {
			t.Errorf("pod %s: env %s = %q, want %q (env %v)", pod.Name, k, env[k], v, env)
		}
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/dev/shm" }) {
		t.Errorf("pod %s: no /dev/shm mount in %+v", pod.Name, c.VolumeMounts)
	}
	// The shm size is half the 32Gi memory limit.
	if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool {
		return v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory && v.EmptyDir.SizeLimit != nil && v.EmptyDir.SizeLimit.String() == "16Gi"
	}) {
		t.Errorf("pod %s: no 16Gi memory emptyDir in %+v", pod.Name, pod.Spec.Volumes)
	}
}

// checkCurrentStamp checks the Pod is stamped with profile p and that the decision code behind
// audit finds nothing left to do (the stamp's hash is the profile's today).
func checkCurrentStamp(t *testing.T, pod *corev1.Pod, keys profile.Keys, set *profile.Set, p string) {
	t.Helper()
	stamp := pod.Annotations[keys.Injected]
	if !strings.HasPrefix(stamp, p+profile.StampSep) {
		t.Errorf("pod %s: %s = %q, want %s%s<hash>", pod.Name, keys.Injected, stamp, p, profile.StampSep)
	}
	if name, stale := audit.MetaOf(pod.Labels, pod.Annotations, keys).OutOfDate(set, keys); stale {
		t.Errorf("pod %s: stamp %q out of date (counted under %q)", pod.Name, stamp, name)
	}
}

var webhookAdmissionLine = regexp.MustCompile(`(?m)^apiserver_admission_webhook_admission_duration_seconds_count\{([^}]*)\} (\S+)$`)

// webhookAdmissions sums the API server's apiserver_admission_webhook_admission_duration_seconds_count
// for the webhook named name: how many times the API server called it.
func webhookAdmissions(t *testing.T, kube kubernetes.Interface, name string) float64 {
	t.Helper()
	body, err := kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("the API server's /metrics: %v", err)
	}
	var n float64
	for _, m := range webhookAdmissionLine.FindAllStringSubmatch(string(body), -1) {
		if !strings.Contains(","+m[1]+",", `,name="`+name+`",`) {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		n += v
	}
	return n
}

func deleteNamespace(kube kubernetes.Interface, name string) {
	_ = kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
}
