package policy

import (
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// Namespace selection modes: which namespaces a backend (the webhook's namespaceSelector, a
// policy's binding) takes.
const (
	ModeOptIn  = "optIn"  // namespaces labelled <domain>/inject with an opt-in word
	ModeOptOut = "optOut" // every namespace not labelled <domain>/inject with an opt-out word
	ModeAll    = "all"    // every namespace
	ModeCustom = "custom" // the given matchLabels and matchExpressions
)

// Modes lists the modes, for messages.
var Modes = []string{ModeOptIn, ModeOptOut, ModeAll, ModeCustom}

// ExcludedNamespaces are never selected: the system namespaces, and the webhook's own namespace
// so that a broken webhook can never block its own restart.
func ExcludedNamespaces(own string) []string {
	list := []string{metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}
	if own != "" && !slices.Contains(list, own) {
		list = append(list, own)
	}
	return list
}

// NamespaceSelector builds the namespace selector of a mode (custom uses the given selector).
// Every mode ends with the exclusion of ExcludedNamespaces(own) by their
// kubernetes.io/metadata.name label, which the API server sets on every namespace.
func NamespaceSelector(mode string, custom metav1.LabelSelector, domain, own string) metav1.LabelSelector {
	var out metav1.LabelSelector
	label := profile.KeysFor(domain).Inject // the namespace label of the optIn and optOut modes
	switch mode {
	case ModeOptIn:
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key:      label,
			Operator: metav1.LabelSelectorOpIn,
			Values:   labelSpellings(profile.OptInValues),
		})
	case ModeOptOut:
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key:      label,
			Operator: metav1.LabelSelectorOpNotIn,
			Values:   labelSpellings(profile.OptOutValues),
		})
	case ModeCustom:
		out.MatchLabels = maps.Clone(custom.MatchLabels)
		out.MatchExpressions = slices.Clone(custom.MatchExpressions)
	case ModeAll:
	}
	out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
		Key:      corev1.LabelMetadataName,
		Operator: metav1.LabelSelectorOpNotIn,
		Values:   ExcludedNamespaces(own),
	})
	return out
}

// labelSpellings lists each word lower case, Capitalised and UPPER case. A Pod's <domain>/inject
// is read trimmed and in any case, but a label selector compares exactly: without these a
// namespace labelled inject=False would be injected in optOut mode, silently. (Label values
// cannot carry spaces, so trimming needs no spellings.)
func labelSpellings(words []string) []string {
	var out []string
	for _, w := range words {
		for _, s := range []string{w, strings.ToUpper(w[:1]) + w[1:], strings.ToUpper(w)} {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
