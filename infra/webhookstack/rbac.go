package webhookstack

import (
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	resourcev1 "k8s.io/api/resource/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"

	pmetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	prbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ClusterReaderRules are everything the server may do with the Kubernetes API under
// clusterFacts: read and watch the classes and ResourceClaimTemplates a profile may name
// (webhook/cluster), nothing else.
// The control-plane tests grant exactly these and ask the API server what they allow.
func ClusterReaderRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{nodev1.GroupName}, Resources: []string{"runtimeclasses"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{schedulingv1.GroupName}, Resources: []string{"priorityclasses"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{resourcev1.GroupName}, Resources: []string{"resourceclaimtemplates"}, Verbs: []string{"get", "list", "watch"}},
	}
}

// PodWatchRules are what the server's ai_webhook_pods_out_of_date needs (podsOutOfDateMetric):
// list and watch Pods. It reads their metadata only, which RBAC cannot narrow a list to.
func PodWatchRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{corev1.GroupName}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}}}
}

// readsCluster reports whether the server reads the Kubernetes API (and gets a token).
func (c Config) readsCluster() bool { return c.ClusterFacts || c.PodsOutOfDateMetric }

// newClusterReader creates the ClusterRole of ClusterReaderRules (clusterFacts) and
// PodWatchRules (podsOutOfDateMetric) and binds it to the server's ServiceAccount. With both
// off it creates nothing and the Pods get no token.
func newClusterReader(ctx *pulumi.Context, name string, cfg Config, namespace pulumi.StringOutput, opts ...pulumi.ResourceOption) ([]pulumi.Resource, error) {
	if !cfg.readsCluster() {
		return nil, nil
	}
	var want []rbacv1.PolicyRule
	if cfg.ClusterFacts {
		want = append(want, ClusterReaderRules()...)
	}
	if cfg.PodsOutOfDateMetric {
		want = append(want, PodWatchRules()...)
	}
	rules := prbacv1.PolicyRuleArray{}
	for _, r := range want {
		rules = append(rules, &prbacv1.PolicyRuleArgs{
			ApiGroups: pulumi.ToStringArray(r.APIGroups),
			Resources: pulumi.ToStringArray(r.Resources),
			Verbs:     pulumi.ToStringArray(r.Verbs),
		})
	}
	// Cluster-scoped names are auto-named (a suffix) so two installations in different
	// namespaces do not collide.
	role, err := prbacv1.NewClusterRole(ctx, name+"-cluster-reader", &prbacv1.ClusterRoleArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Labels: commonLabels(cfg.Name)},
		Rules:    rules,
	}, opts...)
	if err != nil {
		return nil, err
	}
	binding, err := prbacv1.NewClusterRoleBinding(ctx, name+"-cluster-reader", &prbacv1.ClusterRoleBindingArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Labels: commonLabels(cfg.Name)},
		RoleRef: &prbacv1.RoleRefArgs{
			ApiGroup: pulumi.String(rbacv1.GroupName),
			Kind:     pulumi.String("ClusterRole"),
			Name:     role.Metadata.Name().Elem(),
		},
		Subjects: prbacv1.SubjectArray{&prbacv1.SubjectArgs{
			Kind:      pulumi.String(rbacv1.ServiceAccountKind),
			Name:      pulumi.String(cfg.Name), // the ServiceAccount
			Namespace: namespace,
		}},
	}, opts...)
	if err != nil {
		return nil, err
	}
	return []pulumi.Resource{role, binding}, nil
}
