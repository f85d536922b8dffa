package webhookstack

import (
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

// newClusterReader creates the ClusterRole of ClusterReaderRules and binds it to the server's
// ServiceAccount. With clusterFacts off it creates nothing and the Pods get no token.
func newClusterReader(ctx *pulumi.Context, name string, cfg Config, namespace pulumi.StringOutput, opts ...pulumi.ResourceOption) ([]pulumi.Resource, error) {
	if !cfg.ClusterFacts {
		return nil, nil
	}
	rules := prbacv1.PolicyRuleArray{}
	for _, r := range ClusterReaderRules() {
		rules = append(rules, &prbacv1.PolicyRuleArgs{
			ApiGroups: pulumi.ToStringArray(r.APIGroups),
			Resources: pulumi.ToStringArray(r.Resources),
			Verbs:     pulumi.ToStringArray(r.Verbs),
		})
	}
	// Cluster-scoped names are auto-named (a suffix) so two installations in different
	// namespaces do not collide.
	role, err := prbacv1.NewClusterRole(ctx, name+"-cluster-reader", &prbacv1.ClusterRoleArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Labels: commonLabels()},
		Rules:    rules,
	}, opts...)
	if err != nil {
		return nil, err
	}
	binding, err := prbacv1.NewClusterRoleBinding(ctx, name+"-cluster-reader", &prbacv1.ClusterRoleBindingArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Labels: commonLabels()},
		RoleRef: &prbacv1.RoleRefArgs{
			ApiGroup: pulumi.String(rbacv1.GroupName),
			Kind:     pulumi.String("ClusterRole"),
			Name:     role.Metadata.Name().Elem(),
		},
		Subjects: prbacv1.SubjectArray{&prbacv1.SubjectArgs{
			Kind:      pulumi.String(rbacv1.ServiceAccountKind),
			Name:      pulumi.String(appName),
			Namespace: namespace,
		}},
	}, opts...)
	if err != nil {
		return nil, err
	}
	return []pulumi.Resource{role, binding}, nil
}
