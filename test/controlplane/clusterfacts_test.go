package controlplane

// Cluster facts (issue 12): the server reads RuntimeClasses and PriorityClasses through the
// stack's ServiceAccount, and a profile naming a class the cluster lacks no longer gets Pods
// refused by the API server.

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/infra/webhookstack"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

const (
	factsService  = "ai-webhook-facts"
	factsAddress  = "10.250.0.14"
	factsPort     = 8445
	factsNSLabel  = "facts-test"
	readerSA      = "ai-webhook" // the stack's ServiceAccount name
	missingRC     = "not-installed"
	missingPC     = "not-installed-priority"
	lateCreatedPC = "created-after-start"
	factsProfiles = `
profiles:
- name: missing
  pod: {runtimeClassName: ` + missingRC + `, priorityClassName: ` + missingPC + `}
- name: present
  pod: {runtimeClassName: ` + cluster.GPURuntimeClass + `, priorityClassName: ` + lateCreatedPC + `}
` + draProfile
)

var readerUser = "system:serviceaccount:" + webhookNamespace + ":" + readerSA

// grantRules creates a ClusterRole of rules and binds it to the test ServiceAccount until the
// test ends.
func grantRules(t *testing.T, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	if _, err := fx.client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: readerSA, Namespace: webhookNamespace}}}
	if _, err := fx.client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = fx.client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = fx.client.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})
}

// allowed asks the API server whether the ServiceAccount may do verb on group/resource.
func allowed(t *testing.T, verb, group, resource, namespace string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   readerUser,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + webhookNamespace, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: verb, Group: group, Resource: resource, Namespace: namespace,
		},
	}}
	got, err := fx.client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Status.Allowed
}

// access is one request the ServiceAccount could make.
type access struct{ verb, group, resource, namespace string }

func (a access) String() string {
	return fmt.Sprintf("%s %s/%s in %q", a.verb, a.group, a.resource, a.namespace)
}

// beyondAnyRole are requests no role of the stack grants.
var beyondAnyRole = []access{
	{"get", "", "secrets", webhookNamespace}, {"list", "", "configmaps", webhookNamespace}, {"list", "", "nodes", ""},
	{"list", "", "namespaces", ""}, {"list", "resource.k8s.io", "deviceclasses", ""},
	{"list", "resource.k8s.io", "resourceclaims", "default"}, {"create", "resource.k8s.io", "resourceclaimtemplates", "default"},
	{"update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", ""},
	{"impersonate", "", "serviceaccounts", ""}, {"create", "", "serviceaccounts/token", webhookNamespace},
	{"*", "*", "*", ""},
}

// checkRoleAllowsExactly binds a ClusterRole of rules to the ServiceAccount and asks the real
// API server (SubjectAccessReviews) that allow are allowed and deny and beyondAnyRole denied.
func checkRoleAllowsExactly(t *testing.T, name string, rules []rbacv1.PolicyRule, allow, deny []access) {
	t.Helper()
	deny = append(deny, beyondAnyRole...)
	for _, a := range allow {
		if allowed(t, a.verb, a.group, a.resource, a.namespace) {
			t.Fatalf("%s: allowed before the binding: the check below would prove nothing", a)
		}
	}
	grantRules(t, name, rules)
	first := allow[0]
	cluster.Eventually(t, 10*time.Second, "the binding to take effect", func() error {
		if !allowed(t, first.verb, first.group, first.resource, first.namespace) {
			return fmt.Errorf("%s not allowed yet", first)
		}
		return nil
	})
	for _, a := range allow {
		if !allowed(t, a.verb, a.group, a.resource, a.namespace) {
			t.Errorf("%s: denied, want allowed", a)
		}
	}
	for _, a := range deny {
		if allowed(t, a.verb, a.group, a.resource, a.namespace) {
			t.Errorf("%s: allowed, want denied", a)
		}
	}
}

// writeVerbs are the verbs a read-only role must not grant.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection", "escalate", "bind"}

func TestClusterReaderMayReadTheClassesAndNothingElse(t *testing.T) {
	requireControlPlane(t)
	var allow, deny []access
	for _, r := range []struct{ group, resource string }{{"node.k8s.io", "runtimeclasses"},
		{"scheduling.k8s.io", "priorityclasses"}, {"resource.k8s.io", "resourceclaimtemplates"}} {
		for _, verb := range []string{"get", "list", "watch"} {
			allow = append(allow, access{verb, r.group, r.resource, ""})
		}
		for _, verb := range writeVerbs {
			deny = append(deny, access{verb, r.group, r.resource, ""})
		}
	}
	deny = append(deny, access{"get", "", "pods", ""}, access{"list", "", "pods", "default"}, access{"create", "", "pods", "default"})
	checkRoleAllowsExactly(t, "ai-webhook-cluster-reader-test", webhookstack.ClusterReaderRules(), allow, deny)
}

// With podsOutOfDateMetric the server lists and watches Pods' metadata: the role allows that,
// in every namespace, and not reading one Pod, writing Pods or reading the classes.
func TestPodWatchRulesMayListAndWatchPodsAndNothingElse(t *testing.T) {
	requireControlPlane(t)
	var allow, deny []access
	for _, ns := range []string{"", "default"} {
		allow = append(allow, access{"list", "", "pods", ns}, access{"watch", "", "pods", ns})
		deny = append(deny, access{"get", "", "pods", ns})
		for _, verb := range writeVerbs {
			deny = append(deny, access{verb, "", "pods", ns})
		}
	}
	deny = append(deny, access{"list", "node.k8s.io", "runtimeclasses", ""}, access{"list", "scheduling.k8s.io", "priorityclasses", ""},
		access{"list", "resource.k8s.io", "resourceclaimtemplates", ""})
	checkRoleAllowsExactly(t, "ai-webhook-pod-watch-test", webhookstack.PodWatchRules(), allow, deny)
}

// warnings collects the API server's warnings for one client.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.Join(w.list, "\n")
	w.list = nil
	return s
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the ServiceAccount with a
// token from the TokenRequest API, as the mounted token of the Deployment's Pod would.
func serviceAccountKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: readerSA, Namespace: webhookNamespace}}
	if _, err := fx.client.CoreV1().ServiceAccounts(webhookNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tr, err := fx.client.CoreV1().ServiceAccounts(webhookNamespace).CreateToken(ctx, readerSA,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("request a ServiceAccount token: %v", err)
	}
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: sa, user: {token: %q}}]
contexts: [{name: c, context: {cluster: c, user: sa}}]
current-context: c
`, fx.cluster.Config.Host, base64.StdEncoding.EncodeToString(fx.cluster.Config.CAData), tr.Status.Token)
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestClassTheClusterLacksIsLeftOutAndOneItHasIsApplied(t *testing.T) {
	requireControlPlane(t)
	ctx := context.Background()
	dir := filepath.Join(os.Getenv(envWorkDir), "facts")
	serving, err := issueServing(fx.ca, factsService, webhookNamespace)
	if err != nil {
		t.Fatal(err)
	}
	files := projectedDir{dir: dir}
	if err := files.write(map[string][]byte{"tls.crt": serving.CertPEM, "tls.key": serving.KeyPEM, "profiles.yaml": []byte(factsProfiles)}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := serviceAccountKubeconfig(t, dir)
	addr := net.JoinHostPort(factsAddress, strconv.Itoa(factsPort))
	proc, err := cluster.StartProcess(cluster.Command{Name: "ai-webhook (cluster facts)", Log: filepath.Join(dir, "ai-webhook.log"),
		Argv: []string{os.Getenv(envWebhookBin), "serve", "--listen=" + addr,
			"--tls-cert-file=" + files.path("tls.crt"), "--tls-key-file=" + files.path("tls.key"),
			"--profiles-file=" + files.path("profiles.yaml"), "--domain=" + domain, "--shutdown-delay=0s",
			"--cluster-facts=on", "--kubeconfig=" + kubeconfig}})
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, proc, "the cluster-facts webhook")

	// The ServiceAccount has no rights yet: the caches cannot list, so the replica stays unready.
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	err = fx.waitReady(short, addr, factsService+"."+webhookNamespace+".svc", proc)
	cancel()
	if err == nil {
		t.Fatal("/readyz answered 200 before the ServiceAccount could list the classes")
	}
	grantRules(t, "ai-webhook-cluster-reader-test", webhookstack.ClusterReaderRules())
	long, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := fx.waitReady(long, addr, factsService+"."+webhookNamespace+".svc", proc); err != nil {
		t.Fatalf("not ready after the binding: %v", err)
	}
	exposeForTest(t, factsService, factsAddress, factsPort)

	t.Run("offline inject --kubeconfig reads the same facts", func(t *testing.T) {
		p := trainingPod("offline", optInLabel("missing"))
		p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
		pod, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		podFile := filepath.Join(dir, "pod.yaml")
		if err := os.WriteFile(podFile, pod, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(os.Getenv(envWebhookBin), "inject", "-f", podFile, "--profiles-file", files.path("profiles.yaml"),
			"--domain", domain, "--kubeconfig", kubeconfig, "--explain").CombinedOutput()
		if err != nil {
			t.Fatalf("inject --kubeconfig: %v\n%s", err, out)
		}
		for _, want := range []string{`RuntimeClass "` + missingRC + `" not found in the cluster`, `PriorityClass "` + missingPC + `" not found in the cluster`} {
			if !strings.Contains(string(out), want) {
				t.Errorf("--explain lacks %q:\n%s", want, out)
			}
		}
	})
	cfg := stackWebhook(withService(factsService), func(w *admissionregistrationv1.MutatingWebhook) {
		w.Name = "facts." + domain
		w.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{factsNSLabel: "true"}}
	})
	cfg.Name = "facts-ai-webhook"
	installWebhook(t, cfg)
	ns := newNamespace(t, map[string]string{factsNSLabel: "true"})

	seen := &warnings{}
	restCfg := rest.CopyConfig(fx.cluster.Config)
	restCfg.WarningHandler = seen
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	create := func(profile string) (*corev1.Pod, error) {
		pod := trainingPod("p-"+randSuffix(), optInLabel(profile))
		return client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	}
	cluster.Eventually(t, 30*time.Second, "the API server to call the cluster-facts webhook", func() error {
		p, err := create("missing")
		if err != nil {
			return err
		}
		if _, ok := p.Annotations[injectedKey]; !ok {
			return fmt.Errorf("pod came back without %s", injectedKey)
		}
		return nil
	})

	t.Run("classes the cluster lacks are left out, with a warning each", func(t *testing.T) {
		seen.take()
		p, err := create("missing")
		if err != nil {
			t.Fatalf("a Pod whose profile names missing classes was refused: %v", err)
		}
		if p.Spec.RuntimeClassName != nil || p.Spec.PriorityClassName != "" {
			t.Errorf("runtimeClassName %v, priorityClassName %q: want neither", deref(p.Spec.RuntimeClassName), p.Spec.PriorityClassName)
		}
		w := seen.take()
		for _, want := range []string{`RuntimeClass "` + missingRC + `" not found`, `PriorityClass "` + missingPC + `" not found`} {
			if !strings.Contains(w, want) {
				t.Errorf("warnings %q lack %q", w, want)
			}
		}
	})

	t.Run("a class that exists is applied; one created later is seen through the watch", func(t *testing.T) {
		p, err := create("present")
		if err != nil {
			t.Fatal(err)
		}
		if got := deref(p.Spec.RuntimeClassName); got != cluster.GPURuntimeClass || p.Spec.PriorityClassName != "" {
			t.Fatalf("runtimeClassName %v, priorityClassName %q: want %s and none yet", got, p.Spec.PriorityClassName, cluster.GPURuntimeClass)
		}
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: lateCreatedPC}, Value: 1000}
		if _, err := fx.client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = fx.client.SchedulingV1().PriorityClasses().Delete(ctx, lateCreatedPC, metav1.DeleteOptions{})
		})
		cluster.Eventually(t, 30*time.Second, "the new PriorityClass to be applied", func() error {
			p, err := create("present")
			if err != nil {
				return err
			}
			if p.Spec.PriorityClassName != lateCreatedPC || p.Spec.Priority == nil || *p.Spec.Priority != 1000 {
				return fmt.Errorf("priorityClassName %q priority %v", p.Spec.PriorityClassName, deref(p.Spec.Priority))
			}
			return nil
		})
	})

	t.Run("GPUs through DRA claims", func(t *testing.T) {
		testDRAClaims(t, seen, func(ns, profile string) (*corev1.Pod, error) {
			pod := trainingPod("p-"+randSuffix(), optInLabel(profile))
			return client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		})
	})
}
