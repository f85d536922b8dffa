package webhookstack

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/webhook/policy"
)

// NamespaceSelectorFor builds the webhook's namespaceSelector for the configured mode (the
// control-plane tests install it as the stack does). The selector itself is
// policy.NamespaceSelector, shared with the bindings of compiled policies.
func NamespaceSelectorFor(sel NamespaceSelector, domain, own string) metav1.LabelSelector {
	return policy.NamespaceSelector(sel.Mode, metav1.LabelSelector{MatchLabels: sel.MatchLabels, MatchExpressions: sel.MatchExpressions}, domain, own)
}
