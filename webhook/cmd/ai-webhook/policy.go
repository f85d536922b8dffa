package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/webhook/policy"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// policyCmd prints each profile of the file as a MutatingAdmissionPolicy and its binding, then
// the ValidatingAdmissionPolicy that refuses the Pods the webhook refuses (policy.Refusals). A
// profile that needs the webhook is named on stderr with the settings that need it; the
// command fails only when no profile compiles, so a file that is partly served by policies
// still prints what can be.
func policyCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("profiles-file", "", "profile file (default: the shipped examples)")
	domain := fs.String("domain", profile.DefaultDomain, "prefix of the keys <domain>/profile, /inject, /injected")
	mode := fs.String("namespace-mode", policy.ModeOptIn, "namespaces the bindings select: "+strings.Join(policy.Modes, ", "))
	custom := fs.String("namespace-selector", "", "label selector of mode custom, e.g. 'team=ml,tier in (gpu)'")
	own := fs.String("namespace", "ai-webhook", "namespace excluded with kube-system, kube-public and kube-node-lease (the stack's own)")
	name := fs.String("name", policy.DefaultInstance, "instance name (the stack's config name): the objects are named <name>.<profile> and <name>.refusals")
	failure := fs.String("failure-policy", string(admissionregistrationv1.Ignore), "Ignore or Fail: what the API server does when a policy fails to evaluate")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("policy: unexpected argument %q", fs.Arg(0))}
	}
	if !slices.Contains(policy.Modes, *mode) {
		return usageError{fmt.Errorf("policy: --namespace-mode must be one of %s, got %q", strings.Join(policy.Modes, ", "), *mode)}
	}
	if msgs := validation.IsDNS1123Label(*name); len(msgs) > 0 {
		return usageError{fmt.Errorf("policy: --name must be a DNS label, got %q: %s", *name, strings.Join(msgs, "; "))}
	}
	var sel metav1.LabelSelector
	switch {
	case *mode == policy.ModeCustom && *custom == "":
		return usageError{errors.New("policy: --namespace-mode custom needs --namespace-selector")}
	case *mode != policy.ModeCustom && *custom != "":
		return usageError{fmt.Errorf("policy: --namespace-selector is used only with --namespace-mode custom, got %q", *mode)}
	case *custom != "":
		s, err := metav1.ParseToLabelSelector(*custom)
		if err != nil {
			return usageError{fmt.Errorf("policy: --namespace-selector: %w", err)}
		}
		sel = *s
	}
	fp := admissionregistrationv1.FailurePolicyType(*failure)
	if fp != admissionregistrationv1.Ignore && fp != admissionregistrationv1.Fail {
		return usageError{fmt.Errorf("policy: --failure-policy must be Ignore or Fail, got %q", *failure)}
	}
	set, err := readProfiles(*file, *domain)
	if err != nil {
		return err
	}
	opts := policy.Options{Domain: *domain, Instance: *name, FailurePolicy: fp, NamespaceSelector: policy.NamespaceSelector(*mode, sel, *domain, *own)}
	compiled, refused := policy.CompileSet(set, opts)
	for _, r := range refused {
		fmt.Fprintf(stderr, "ai-webhook policy: %v\n", r)
	}
	if len(compiled) == 0 {
		return fmt.Errorf("policy: no profile compiles (%d refused): serve them with the webhook", len(refused))
	}
	var objs []any
	for _, c := range compiled {
		objs = append(objs, c.Policy, c.Binding)
	}
	vap, vapBinding := policy.Refusals(set, opts)
	objs = append(objs, vap, vapBinding)
	for i, obj := range objs {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(stdout, "---")
		}
		if _, err := stdout.Write(b); err != nil {
			return err
		}
	}
	return nil
}
