package webhookstack

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
)

// excludedNamespaces are never sent to the webhook: the system namespaces, and the webhook's own
// namespace so that a broken webhook can never block its own restart.
func excludedNamespaces(own string) []string {
	list := []string{metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}
	if !slices.Contains(list, own) {
		list = append(list, own)
	}
	return list
}

// namespaceSelectorFor builds the webhook's namespaceSelector for the configured mode. Every
// mode ends with the exclusion of excludedNamespaces(own) by their kubernetes.io/metadata.name
// label, which the API server sets on every namespace.
func namespaceSelectorFor(sel NamespaceSelector, domain, own string) metav1.LabelSelector {
	var out metav1.LabelSelector
	label := inject.KeysFor(domain).Inject // the namespace label of the optIn and optOut modes
	switch sel.Mode {
	case ModeOptIn:
		out.MatchLabels = map[string]string{label: inject.NamespaceEnabled}
	case ModeOptOut:
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key:      label,
			Operator: metav1.LabelSelectorOpNotIn,
			Values:   []string{inject.NamespaceDisabled},
		})
	case ModeCustom:
		out.MatchLabels = maps.Clone(sel.MatchLabels)
		out.MatchExpressions = slices.Clone(sel.MatchExpressions)
	case ModeAll:
	}
	out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
		Key:      corev1.LabelMetadataName,
		Operator: metav1.LabelSelectorOpNotIn,
		Values:   excludedNamespaces(own),
	})
	return out
}
