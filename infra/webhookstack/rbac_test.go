package webhookstack

import (
	"slices"
	"strings"
	"testing"
)

const (
	typeClusterRole        = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
	typeClusterRoleBinding = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
)

func TestClusterFactsOffCreatesNoRBACAndMountsNoToken(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	if n := len(res.byType(typeClusterRole)) + len(res.byType(typeClusterRoleBinding)); n != 0 {
		t.Fatalf("clusterFacts off created %d RBAC object(s)", n)
	}
	pod := get(res.one(t, typeDeployment).Inputs, "spec.template.spec")
	want(t, "automountServiceAccountToken", get(pod, "automountServiceAccountToken"), false)
	if args := strs(get(pod, "containers.0"), "args"); slices.Contains(args, "--cluster-facts=on") {
		t.Fatalf("args %v", args)
	}
}

func TestClusterFactsOnReadsExactlyTheClassesAndNothingElse(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{"clusterFacts": "true", "namespace": "platform"})
	role := res.one(t, typeClusterRole)
	want(t, "rules", get(role.Inputs, "rules"), []any{
		map[string]any{"apiGroups": []any{"node.k8s.io"}, "resources": []any{"runtimeclasses"}, "verbs": []any{"get", "list", "watch"}},
		map[string]any{"apiGroups": []any{"scheduling.k8s.io"}, "resources": []any{"priorityclasses"}, "verbs": []any{"get", "list", "watch"}},
		map[string]any{"apiGroups": []any{"resource.k8s.io"}, "resources": []any{"resourceclaimtemplates"}, "verbs": []any{"get", "list", "watch"}},
	})
	binding := res.one(t, typeClusterRoleBinding)
	want(t, "roleRef", get(binding.Inputs, "roleRef"), map[string]any{
		"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": str(role.State, "metadata.name"),
	})
	want(t, "subjects", get(binding.Inputs, "subjects"), []any{
		map[string]any{"kind": "ServiceAccount", "name": "ai-webhook", "namespace": "platform"},
	})
	want(t, "service account name", str(res.one(t, typeServiceAccount).Inputs, "metadata.name"), "ai-webhook")

	deployment := res.one(t, typeDeployment)
	pod := get(deployment.Inputs, "spec.template.spec")
	want(t, "automountServiceAccountToken", get(pod, "automountServiceAccountToken"), true)
	if args := strs(get(pod, "containers.0"), "args"); !slices.Contains(args, "--cluster-facts=on") {
		t.Fatalf("args %v lack --cluster-facts=on", args)
	}
	if !slices.ContainsFunc(deployment.Dependencies, func(urn string) bool { return strings.Contains(urn, "$"+typeClusterRoleBinding+"::") }) {
		t.Errorf("the Deployment does not wait for the binding; dependencies: %v", deployment.Dependencies)
	}
}
