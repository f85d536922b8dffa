package policy

import (
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// RefusalsName names the ValidatingAdmissionPolicy (and binding) of Refusals for an instance:
// <instance>.refusals, cluster-scoped like Name. (A profile named refusals does not collide: its
// policy is a MutatingAdmissionPolicy, another kind.)
func RefusalsName(instance string) string { return instance + ".refusals" }

// Refusals is the ValidatingAdmissionPolicy and binding that refuse the Pods the webhook
// refuses (inject.choose): an unrecognised <domain>/inject value, a profile label and
// annotation that disagree, an unknown profile. A mutating policy cannot refuse; with the
// policy backend this one does, so a Pod is refused whichever backend serves it. (With
// backend auto such Pods match no policy and reach the webhook, which refuses them.)
func Refusals(set *profile.Set, o Options) (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	keys := profile.KeysFor(o.Domain)
	c := &compiler{keys: keys}
	word := func(m string) string {
		return m + "[" + q(keys.Inject) + `].replace("İ", "i").trim().lowerAscii()`
	}
	quoted := func(words []string) string {
		out := make([]string, len(words))
		for i, w := range words {
			out[i] = q(w)
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	known := append(append([]string{}, profile.OptOutValues...), profile.OptInValues...)
	present := func(m string) string { return and("has("+m+")", q(keys.Inject)+" in "+m) }
	ann, label := "object.metadata.annotations", "object.metadata.labels"
	unreadable := func(m string) string { return and(present(m), "!("+word(m)+" in "+quoted(known)+")") }
	optedOut := func(m string) string { return and(present(m), word(m)+" in "+quoted(profile.OptOutValues)) }
	words := strings.Join(profile.OptOutValues, "/") + " opt out, " + strings.Join(profile.OptInValues, "/") + " opt in (or remove it)"
	// inject.choose reads the annotation first: an opt-out there ends the decision.
	badAnn := unreadable(ann)
	badLabel := and("!"+optedOut(ann), unreadable(label))
	pk := q(keys.Profile)
	labelName := "object.metadata.labels[" + pk + "]"
	annName := "object.metadata.annotations[" + pk + "]"
	disagree := and("has("+label+")", pk+" in "+label, labelName+` != ""`, "has("+ann+")", pk+" in "+ann, annName+` != ""`, labelName+" != "+annName)
	name := c.profileName()
	// An opt-out ends the decision before the profile is read.
	chooses := and("!"+optedOut(ann), "!"+optedOut(label))
	validations := []admissionregistrationv1.Validation{
		{Expression: "!" + badAnn, MessageExpression: `"annotation ` + keys.Inject + `=\"" + ` + ann + "[" + q(keys.Inject) + `] + "\" is not recognised: ` + words + `"`},
		{Expression: "!" + badLabel, MessageExpression: `"label ` + keys.Inject + `=\"" + ` + label + "[" + q(keys.Inject) + `] + "\" is not recognised: ` + words + `"`},
		{Expression: "!" + and(chooses, disagree), MessageExpression: `"label ` + keys.Profile + `=\"" + ` + labelName + ` + "\" and annotation ` + keys.Profile + `=\"" + ` + annName + ` + "\" disagree: set one"`},
		{Expression: or("!"+chooses, disagree, name+` == ""`, name+" in "+quoted(set.Names())),
			MessageExpression: `"unknown profile \"" + ` + name + ` + "\" in ` + keys.Profile + `; known profiles: ` + strings.Join(set.Names(), ", ") + `"`},
	}
	fp := o.failurePolicy()
	objName := RefusalsName(o.instance())
	pol := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: objName, Labels: o.labels()},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: podCreates(),
			MatchConditions: []admissionregistrationv1.MatchCondition{
				{Name: "not-mirror-pod", Expression: "!has(object.metadata.annotations) || !(" + q(mirrorPodAnnotation) + " in object.metadata.annotations)"},
			},
			Validations:   validations,
			FailurePolicy: &fp,
		},
	}
	sel := o.NamespaceSelector
	bind := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: objName, Labels: o.labels()},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        objName,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources:    &admissionregistrationv1.MatchResources{NamespaceSelector: &sel},
		},
	}
	return pol, bind
}
