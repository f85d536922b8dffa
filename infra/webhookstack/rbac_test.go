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

func TestPodsOutOfDateMetricMayListAndWatchPodsOnly(t *testing.T) {
	t.Parallel()
	podRule := map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"list", "watch"}}
	for _, tc := range []struct {
		name      string
		config    map[string]string
		wantRules int // ClusterReaderRules first when clusterFacts is on
	}{
		{"metric alone", map[string]string{"podsOutOfDateMetric": "true"}, 1},
		{"metric and cluster facts", map[string]string{"podsOutOfDateMetric": "true", "clusterFacts": "true"}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := mustRun(t, tc.config)
			rules, _ := get(res.one(t, typeClusterRole).Inputs, "rules").([]any)
			if len(rules) != tc.wantRules {
				t.Fatalf("rules %v, want %d", rules, tc.wantRules)
			}
			want(t, "last rule", rules[len(rules)-1], podRule)
			res.one(t, typeClusterRoleBinding)
			pod := get(res.one(t, typeDeployment).Inputs, "spec.template.spec")
			want(t, "automountServiceAccountToken", get(pod, "automountServiceAccountToken"), true)
			args := strs(get(pod, "containers.0"), "args")
			if !slices.Contains(args, "--pods-out-of-date-metric=on") {
				t.Errorf("args %v lack --pods-out-of-date-metric=on", args)
			}
			if facts := tc.config["clusterFacts"] == "true"; slices.Contains(args, "--cluster-facts=on") != facts {
				t.Errorf("args %v: --cluster-facts=on present, want %v", args, facts)
			}
		})
	}
}
