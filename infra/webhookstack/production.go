package webhookstack

import (
	pautoscalingv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/autoscaling/v2"
	pmetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	pnetworkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// newAutoscaler creates the HorizontalPodAutoscaler when autoscaling.enabled is true. It scales
// on the container's requests, so a target needs the matching request (resources.requests).
func newAutoscaler(ctx *pulumi.Context, name string, cfg Config, namespace pulumi.StringOutput, work *workload, opts ...pulumi.ResourceOption) error {
	a := cfg.Autoscaling
	if !a.Enabled {
		return nil
	}
	metrics := pautoscalingv2.MetricSpecArray{}
	for _, t := range []struct {
		resource corev1.ResourceName
		percent  int
	}{{corev1.ResourceCPU, a.TargetCPU}, {corev1.ResourceMemory, a.TargetMemory}} {
		if t.percent == 0 {
			continue
		}
		metrics = append(metrics, &pautoscalingv2.MetricSpecArgs{
			Type: pulumi.String(string(autoscalingv2.ResourceMetricSourceType)),
			Resource: &pautoscalingv2.ResourceMetricSourceArgs{
				Name: pulumi.String(string(t.resource)),
				Target: &pautoscalingv2.MetricTargetArgs{
					Type:               pulumi.String(string(autoscalingv2.UtilizationMetricType)),
					AverageUtilization: pulumi.Int(t.percent),
				},
			},
		})
	}
	_, err := pautoscalingv2.NewHorizontalPodAutoscaler(ctx, name, &pautoscalingv2.HorizontalPodAutoscalerArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Name: pulumi.String(cfg.Name), Namespace: namespace, Labels: commonLabels(cfg.Name)},
		Spec: &pautoscalingv2.HorizontalPodAutoscalerSpecArgs{
			ScaleTargetRef: &pautoscalingv2.CrossVersionObjectReferenceArgs{
				ApiVersion: pulumi.String("apps/v1"),
				Kind:       pulumi.String("Deployment"),
				Name:       work.deployment.Metadata.Name().Elem(),
			},
			MinReplicas: pulumi.Int(a.MinReplicas),
			MaxReplicas: pulumi.Int(a.MaxReplicas),
			Metrics:     metrics,
		},
	}, opts...)
	return err
}

// newNetworkPolicy creates the NetworkPolicy when networkPolicy.enabled is true: the instance's
// Pods accept the webhook port only from the API server's addresses and, when the server has a
// metrics port (metricsPort > 0), that port only from the Prometheus Pods. Everything
// else inbound is refused; outbound is left alone (clusterFacts needs the API server).
func newNetworkPolicy(ctx *pulumi.Context, name string, cfg Config, metricsPort int, namespace pulumi.StringOutput, opts ...pulumi.ResourceOption) error {
	n := cfg.NetworkPolicy
	if !n.Enabled {
		return nil
	}
	tcp := pulumi.String(string(corev1.ProtocolTCP))
	apiServer := pnetworkingv1.NetworkPolicyPeerArray{}
	for _, cidr := range n.APIServerCIDRs {
		apiServer = append(apiServer, &pnetworkingv1.NetworkPolicyPeerArgs{IpBlock: &pnetworkingv1.IPBlockArgs{Cidr: pulumi.String(cidr)}})
	}
	ingress := pnetworkingv1.NetworkPolicyIngressRuleArray{&pnetworkingv1.NetworkPolicyIngressRuleArgs{
		From:  apiServer,
		Ports: pnetworkingv1.NetworkPolicyPortArray{&pnetworkingv1.NetworkPolicyPortArgs{Port: pulumi.Int(cfg.Port), Protocol: tcp}},
	}}
	if metricsPort > 0 {
		ingress = append(ingress, &pnetworkingv1.NetworkPolicyIngressRuleArgs{
			From: pnetworkingv1.NetworkPolicyPeerArray{&pnetworkingv1.NetworkPolicyPeerArgs{
				NamespaceSelector: labelSelectorArgs(n.PrometheusNamespaces),
				PodSelector:       labelSelectorArgs(n.PrometheusPods),
			}},
			Ports: pnetworkingv1.NetworkPolicyPortArray{&pnetworkingv1.NetworkPolicyPortArgs{Port: pulumi.Int(metricsPort), Protocol: tcp}},
		})
	}
	_, err := pnetworkingv1.NewNetworkPolicy(ctx, name, &pnetworkingv1.NetworkPolicyArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Name: pulumi.String(cfg.Name), Namespace: namespace, Labels: commonLabels(cfg.Name)},
		Spec: &pnetworkingv1.NetworkPolicySpecArgs{
			PodSelector: &pmetav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(selectorLabels(cfg.Name))},
			PolicyTypes: pulumi.StringArray{pulumi.String(string(networkingv1.PolicyTypeIngress))},
			Ingress:     ingress,
		},
	}, opts...)
	return err
}
