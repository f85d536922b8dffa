package bench

import (
	"context"
	"errors"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ai-webhook/ai-webhook/webhook/policy"
)

// PolicyCondition names the Pod-create condition where the profiles are applied by their
// compiled MutatingAdmissionPolicies (ai-webhook policy), with no webhook registered.
const PolicyCondition = "ai-webhook as MutatingAdmissionPolicies"

// policyCondition stands for that condition among the servers of RunPodCreates: no process,
// switched by setPolicies.
var policyCondition = &Server{Name: PolicyCondition}

// setPolicies installs (on) or removes the policies of the fixture's profiles, bound to the
// benchmark's namespace, and waits until the API server acts on the change.
func setPolicies(ctx context.Context, client kubernetes.Interface, fx *Fixture, on bool) error {
	compiled, _ := policy.CompileSet(fx.Profiles, policy.Options{Domain: Domain, FailurePolicy: admissionregistrationv1.Fail,
		NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": podCreateNamespace}}})
	if len(compiled) == 0 {
		return errors.New("no profile compiles")
	}
	api := client.AdmissionregistrationV1()
	for _, c := range compiled {
		var err error
		if on {
			if _, err = api.MutatingAdmissionPolicies().Create(ctx, c.Policy, metav1.CreateOptions{}); err == nil {
				_, err = api.MutatingAdmissionPolicyBindings().Create(ctx, c.Binding, metav1.CreateOptions{})
			}
		} else {
			if err = api.MutatingAdmissionPolicyBindings().Delete(ctx, c.Binding.Name, metav1.DeleteOptions{}); err == nil || apierrors.IsNotFound(err) {
				err = api.MutatingAdmissionPolicies().Delete(ctx, c.Policy.Name, metav1.DeleteOptions{})
			}
			if apierrors.IsNotFound(err) {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("policy %s: %w", c.Policy.Name, err)
		}
	}
	return waitCalled(ctx, client, fx, policyCondition, on)
}
