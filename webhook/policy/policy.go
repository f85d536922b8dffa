// Package policy compiles a profile into a MutatingAdmissionPolicy and its binding
// (admissionregistration.k8s.io/v1, KEP-3962): the API server then applies the profile itself,
// in CEL, with no webhook server in the path. It is pure: no HTTP, no clients.
//
// The policy does what package inject does for the profile, step by step in the same order:
// each step is one JSONPatch mutation, and the API server evaluates a policy's mutations in
// order, each on the object the previous ones left, as inject's rules run on the Pod as the
// previous rules left it. Every step decides from the Pod as it is, so a second run changes
// nothing and a reinvocation (reinvocationPolicy IfNeeded, after another webhook added a
// container) gives only the new container its settings. A profile setting the compiler cannot
// express exactly is refused (RefusedError names it): that profile needs the webhook.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// Options are what the compiled objects need beside the profile.
type Options struct {
	// Domain prefixes the keys (profile.KeysFor).
	Domain string
	// NamespaceSelector is the binding's: NamespaceSelectorFor the configured mode.
	NamespaceSelector metav1.LabelSelector
	// Default says the profile is the file's defaultProfile: it also takes GPU Pods that name
	// no profile.
	Default bool
	// FailurePolicy of the policy; empty means Ignore, the stack's default for the webhook.
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// Instance is the installation's name (the stack's config name): every object's name
	// derives from it, and its app.kubernetes.io/instance label is it. Empty means
	// DefaultInstance.
	Instance string
}

// DefaultInstance is the instance name of a stack that sets none.
const DefaultInstance = "ai-webhook"

func (o Options) instance() string {
	if o.Instance == "" {
		return DefaultInstance
	}
	return o.Instance
}

// labels mark an object as the instance's, as the stack labels the rest of it.
func (o Options) labels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": "ai-webhook", "app.kubernetes.io/instance": o.instance()}
}

// Compiled is one profile as a policy and its binding.
type Compiled struct {
	Policy  *admissionregistrationv1.MutatingAdmissionPolicy
	Binding *admissionregistrationv1.MutatingAdmissionPolicyBinding
}

// RefusedError lists the settings of a profile that only the webhook can apply.
type RefusedError struct {
	Profile  string
	Settings []string // each "field: why"
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("profile %s needs the webhook: %s", e.Profile, strings.Join(e.Settings, "; "))
}

// maxPolicyBytes keeps a policy under etcd's default request limit (1.5 MiB) with room for its
// metadata; the shipped profiles compile to about 110 KiB each.
const maxPolicyBytes = 1 << 20

// Name is the policy's and the binding's name for a profile of an instance. The objects are
// cluster-scoped, so two installations (issue 11) must not share a name: <instance>.<profile>.
// The dot keeps the pair unambiguous (a profile name is a DNS label, without dots; with a dash,
// instance a's profile b-c would be instance a-b's profile c). The default instance gets the
// new name too rather than its old ai-profile-<profile>: keeping the old one would let an
// instance named ai-profile take the default's names. Renaming costs an existing stack nothing:
// Pulumi creates the new policy before it deletes the old, and while both exist a Pod gets the
// profile once (each step adds only what is missing), so no Pod goes unmutated.
func Name(instance, profileName string) string { return instance + "." + profileName }

// Compile translates one profile, or refuses it with a *RefusedError.
func Compile(p *profile.Compiled, o Options) (*Compiled, error) {
	if why := untranslatable(p); len(why) > 0 {
		return nil, &RefusedError{Profile: p.Name, Settings: why}
	}
	if o.Domain == "" {
		return nil, errors.New("policy: no domain")
	}
	c := &compiler{p: p, keys: profile.KeysFor(o.Domain)}
	fp := o.failurePolicy()
	name := Name(o.instance(), p.Name)
	pol := &admissionregistrationv1.MutatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: o.labels(), Annotations: map[string]string{c.keys.Injected: p.Stamp}},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints:   podCreates(),
			MatchConditions:    c.matchConditions(o.Default),
			Variables:          c.variables(),
			Mutations:          c.mutations(),
			FailurePolicy:      &fp,
			ReinvocationPolicy: admissionregistrationv1.IfNeededReinvocationPolicy,
		},
	}
	if b, err := json.Marshal(pol); err != nil || len(b) > maxPolicyBytes {
		return nil, &RefusedError{Profile: p.Name, Settings: []string{fmt.Sprintf(
			"the policy would take %d bytes, over the %d an object may take in etcd: too many settings for CEL", len(b), maxPolicyBytes)}}
	}
	sel := o.NamespaceSelector
	bind := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: o.labels()},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName:     name,
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &sel},
		},
	}
	return &Compiled{Policy: pol, Binding: bind}, nil
}

// untranslatable names what the compiler cannot express exactly; empty when it can.
func untranslatable(p *profile.Compiled) []string {
	var why []string
	if len(p.Container.ResourceClaims) > 0 {
		why = append(why, "container.resourceClaims: DRA claims depend on templates in the Pod's namespace")
	}
	if p.Pod.RuntimeClassWhen == profile.RuntimeClassGPU {
		why = append(why, "pod.runtimeClassWhen gpu: not compiled (the webhook decides it)")
	}
	if s := p.Derived.Shm; s != nil {
		for _, v := range p.Pod.Volumes {
			if v.Name == s.VolumeName {
				why = append(why, "pod.volumes "+v.Name+": the profile's own volume under the /dev/shm volume's name")
			}
		}
		for _, m := range p.Container.VolumeMounts {
			if m.Name == s.VolumeName {
				why = append(why, "container.volumeMounts "+m.MountPath+": a mount of the /dev/shm volume")
			}
		}
	}
	return why
}

// compiler writes the CEL for one profile.
type compiler struct {
	p    *profile.Compiled
	keys profile.Keys
}

func (c *compiler) enforced(field, key string) bool { return c.p.Enforced(field, key) }

// CompileSet compiles every profile of a set, in name order: the policies of those that
// compile, and the refusal of each that does not. o.Default is set for the set's default profile.
func CompileSet(set *profile.Set, o Options) ([]*Compiled, []*RefusedError) {
	var out []*Compiled
	var refused []*RefusedError
	def, hasDefault := set.Default()
	for _, n := range set.Names() {
		p, _ := set.Get(n)
		po := o
		po.Default = hasDefault && def.Name == n
		c, err := Compile(p, po)
		var r *RefusedError
		switch {
		case errors.As(err, &r):
			refused = append(refused, r)
		case err != nil:
			refused = append(refused, &RefusedError{Profile: n, Settings: []string{err.Error()}})
		default:
			out = append(out, c)
		}
	}
	return out, refused
}

// podCreates is what every policy of ours matches: Pod creates, in any
// equivalent API version.
func podCreates() *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{
		ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
				Resources: []string{"pods"}, Scope: ptr.To(admissionregistrationv1.NamespacedScope)},
		}}},
		MatchPolicy: ptr.To(admissionregistrationv1.Equivalent),
	}
}

// failurePolicy is the configured one, Ignore when unset (as the webhook's default).
func (o Options) failurePolicy() admissionregistrationv1.FailurePolicyType {
	if o.FailurePolicy == "" {
		return admissionregistrationv1.Ignore
	}
	return o.FailurePolicy
}
