package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/audit"
)

// ownerRef points at obj as its controller, as a controller sets it (no controller-manager
// runs in this suite, so the test wires ownership by hand).
func ownerRef(kind, apiVersion string, obj metav1.Object) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: obj.GetName(), UID: obj.GetUID(), Controller: ptr.To(true)}
}

func ownedBy(ref metav1.OwnerReference) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.OwnerReferences = []metav1.OwnerReference{ref} }
}

// TestAuditListsPodsThatMissedTheirProfileByWorkload creates, while the webhook is not in the
// path (the namespace is not yet selected), Pods that ask for a profile: a bare Pod and two
// Pods of a Deployment's ReplicaSet get no stamp, a CronJob's Job's Pod carries a stamp with
// an old hash. Then the namespace is opted in and a Pod is admitted through the webhook. The
// real binary's `audit` lists the first four, grouped by Deployment, CronJob and Pod, and not
// the current one.
func TestAuditListsPodsThatMissedTheirProfileByWorkload(t *testing.T) {
	requireControlPlane(t)
	ctx := context.Background()
	ns := newNamespace(t, nil) // not selected by the stack's optIn selector yet

	labels := map[string]string{"app": "web"}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       trainingPod("t").Spec,
	}
	dep, err := fx.client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := fx.client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f", OwnerReferences: []metav1.OwnerReference{ownerRef("Deployment", "apps/v1", dep)}},
		Spec:       appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jobTemplate := template
	jobTemplate.Spec.RestartPolicy = corev1.RestartPolicyNever
	cron, err := fx.client.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 2 * * *", JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: jobTemplate}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := fx.client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly-29000", OwnerReferences: []metav1.OwnerReference{ownerRef("CronJob", "batch/v1", cron)}},
		Spec:       batchv1.JobSpec{Template: jobTemplate},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	failOpen := []*corev1.Pod{
		trainingPod("bare", optInLabel(gpuProfile)),
		trainingPod("web-5d8f-a", optInLabel(gpuProfile), ownedBy(ownerRef("ReplicaSet", "apps/v1", rs))),
		trainingPod("web-5d8f-b", optInLabel(gpuProfile), ownedBy(ownerRef("ReplicaSet", "apps/v1", rs))),
		trainingPod("nightly-29000-x", optInLabel(gpuProfile), ownedBy(ownerRef("Job", "batch/v1", job)),
			func(p *corev1.Pod) { setAnnotation(p, injectedKey, gpuProfile+"@0000000000000000") }),
	}
	for _, p := range failOpen {
		got, err := createPod(ns, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if s := got.Annotations[injectedKey]; s != p.Annotations[injectedKey] {
			t.Fatalf("Pod %s was admitted through the webhook (stamp %q): the test needs it admitted without", p.Name, s)
		}
	}

	labelNamespace(t, ns, injectKey, "enabled")
	installStackWebhook(t, ns)
	cur, err := createPod(ns, trainingPod("current", optInLabel(gpuProfile)), false)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Annotations[injectedKey] == "" {
		t.Fatalf("Pod current was not stamped by the webhook")
	}

	profiles, err := filepath.Abs(filepath.Join("testdata", "profiles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	runAudit := func(kubeconfig string, args ...string) (string, error) {
		base := []string{"audit", "--kubeconfig", kubeconfig}
		if !slices.Contains(args, "--from-cluster") {
			base = append(base, "--profiles-file", profiles, "--domain", domain)
		}
		cmd := exec.Command(os.Getenv(envWebhookBin), append(base, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("ai-webhook audit %v: %w\n%s", args, err, stderr.String())
		}
		return string(out), nil
	}

	var rep audit.Report
	out, err := runAudit(fx.cluster.Kubeconfig, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("audit -o json does not parse: %v\n%s", err, out)
	}
	got := map[string][]string{} // workload -> "pod why"
	for _, g := range rep.Groups {
		if g.Workload.Namespace != ns {
			continue // other tests' namespaces
		}
		for _, p := range g.Pods {
			got[g.Workload.Kind+"/"+g.Workload.Name] = append(got[g.Workload.Kind+"/"+g.Workload.Name], p.Name+" "+p.Why)
		}
		if len(g.Changes) == 0 {
			t.Errorf("%s: no changes listed", g.Workload)
		}
	}
	want := map[string][]string{
		"Deployment/web":  {"web-5d8f-a " + audit.Unstamped, "web-5d8f-b " + audit.Unstamped},
		"CronJob/nightly": {"nightly-29000-x " + audit.OldHash},
		"Pod/bare":        {"bare " + audit.Unstamped},
	}
	if len(got) != len(want) {
		t.Errorf("audit listed %v, want %v", got, want)
	}
	for w, pods := range want {
		if !slices.Equal(got[w], pods) {
			t.Errorf("workload %s: listed %v, want %v", w, got[w], pods)
		}
	}

	table, err := runAudit(fx.cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ai-webhook audit:\n%s", table)
	for _, s := range []string{"kubectl rollout restart deployment/web -n " + ns, "Pod " + ns + "/bare", "must be recreated"} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
	if strings.Contains(table, "current") {
		t.Errorf("the current Pod is listed:\n%s", table)
	}

	// --from-cluster reads the profiles the webhook serves: a configuration whose Service
	// selects a Deployment laid out as the stack lays it out, its ConfigMap holding the file.
	fromCluster := stackWebhook(withService("audit-served"), withFailurePolicy(admissionregistrationv1.Ignore))
	fromCluster.Name = "ai-audit-from-cluster"
	serveProfiles(t, "audit-served", profiles)
	installWebhook(t, fromCluster)
	out, err = runAudit(fx.cluster.Kubeconfig, "--config", fromCluster.Name, "--from-cluster", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var served audit.Report
	if err := json.Unmarshal([]byte(out), &served); err != nil || !reflect.DeepEqual(served, rep) {
		t.Errorf("--from-cluster: %v; report differs from --profiles-file's:\n%s", err, out)
	}

	// The rules the README gives are enough: a ServiceAccount with exactly them gets the same
	// report, and without them it is refused.
	sa := serviceAccountKubeconfig(t, t.TempDir())
	if _, err := runAudit(sa, "-o", "json"); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("audit without the rules: %v, want forbidden", err)
	}
	sameReport := func(args ...string) func() error {
		return func() error {
			out, err := runAudit(sa, args...)
			if err != nil {
				return err
			}
			var again audit.Report
			if err := json.Unmarshal([]byte(out), &again); err != nil {
				return err
			}
			if !reflect.DeepEqual(again, rep) {
				return fmt.Errorf("report differs from the admin's:\n%s", out)
			}
			return nil
		}
	}
	grantRules(t, "ai-webhook-auditor-test", auditorRules)
	cluster.Eventually(t, 30*time.Second, "audit with the auditor rules", sameReport("-o", "json"))
	fromClusterArgs := []string{"--config", fromCluster.Name, "--from-cluster", "-o", "json"}
	if _, err := runAudit(sa, fromClusterArgs...); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("audit --from-cluster without the served-profiles rules: %v, want forbidden", err)
	}
	grantServedProfilesReader(t)
	cluster.Eventually(t, 30*time.Second, "audit --from-cluster with the served-profiles rules", sameReport(fromClusterArgs...))
}

// servedProfilesRules are what README says --from-cluster needs in the webhook's namespace.
var servedProfilesRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"services", "configmaps"}, Verbs: []string{"get"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"list"}},
}

// grantServedProfilesReader binds servedProfilesRules, in the webhook namespace only, to the
// test ServiceAccount until the test ends.
func grantServedProfilesReader(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	name := "ai-webhook-served-profiles-test"
	rbac := fx.client.RbacV1()
	if _, err := rbac.Roles(webhookNamespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: servedProfilesRules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: readerSA, Namespace: webhookNamespace}}}
	if _, err := rbac.RoleBindings(webhookNamespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = rbac.RoleBindings(webhookNamespace).Delete(ctx, name, metav1.DeleteOptions{})
		_ = rbac.Roles(webhookNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	})
}

// auditorRules are the permissions README's audit section names.
var auditorRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, Verbs: []string{"get"}},
	{APIGroups: []string{""}, Resources: []string{"namespaces", "pods"}, Verbs: []string{"list"}},
	{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get"}},
	{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get"}},
}

// serveProfiles creates, in the webhook namespace, a Service named name selecting a Deployment
// that mounts a ConfigMap holding the profile file at --profiles-file, as the stack does.
func serveProfiles(t *testing.T, name, profilesFile string) {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(profilesFile)
	if err != nil {
		t.Fatal(err)
	}
	sel := map[string]string{"app": name}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name + "-profiles"}, Data: map[string]string{"profiles.yaml": string(data)}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Selector: sel,
		Ports: []corev1.ServicePort{{Port: 443, TargetPort: intstr.FromInt32(webhookPort)}}}}
	pod := trainingPod("server").Spec
	pod.Containers[0].Args = []string{"serve", "--profiles-file=/etc/ai-webhook/profiles/profiles.yaml", "--domain=" + domain}
	pod.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "profiles", MountPath: "/etc/ai-webhook/profiles", ReadOnly: true}}
	pod.Volumes = []corev1.Volume{{Name: "profiles", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}}}}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: sel},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: pod}}}
	if _, err := fx.client.CoreV1().ConfigMaps(webhookNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.client.CoreV1().Services(webhookNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.client.AppsV1().Deployments(webhookNamespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = fx.client.AppsV1().Deployments(webhookNamespace).Delete(ctx, name, metav1.DeleteOptions{})
		_ = fx.client.CoreV1().Services(webhookNamespace).Delete(ctx, name, metav1.DeleteOptions{})
		_ = fx.client.CoreV1().ConfigMaps(webhookNamespace).Delete(ctx, cm.Name, metav1.DeleteOptions{})
	})
}
