package webhookstack

import (
	"fmt"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"
)

// previous is what the stack's last update left in its outputs. It is the program's memory
// between updates: which CA the webhook configuration trusted, when the serving certificate
// expires, and where the webhook ran.
type previous struct {
	deployed                       bool
	caCertPEM                      string
	servingCertExpiry              time.Time
	namespace, service, configName string
}

// readPrevious reads the stack's last outputs: the engine's state of the root Stack resource,
// through the engine's getResource invoke (the SDK's own way to read a resource's state by URN),
// before this update sets them. In preview and up alike; a stack never updated has none. An
// invoke leaves nothing in the state, unlike a StackReference to the stack itself, which every
// refresh would find changed.
//
// registered must be a resource of this program whose registration was sent (the WebhookStack
// component). getResource does not look in the last snapshot: it answers from the states this
// update's steps have produced (pkg/resource/deploy/builtins.go getResource, the news map,
// filled in step_executor.go before a step's registration is answered), else "unknown
// resource". The SDK registers the root Stack asynchronously, so an invoke sent at once can
// overtake it (it did, one up in two under load). A child's registration is sent only once its
// parent's URN is resolved, so once registered's URN resolves the root Stack's step has run:
// its state then holds the last outputs (a same step keeps them), or none on a first install.
func readPrevious(ctx *pulumi.Context, registered pulumi.Resource) (previous, error) {
	if _, err := internals.UnsafeAwaitOutput(ctx.Context(), registered.URN()); err != nil {
		return previous{}, fmt.Errorf("wait for the root Stack's registration: %w", err)
	}
	root := fmt.Sprintf("urn:pulumi:%s::%s::pulumi:pulumi:Stack::%s-%s", ctx.Stack(), ctx.Project(), ctx.Project(), ctx.Stack())
	var stack struct {
		State map[string]any `pulumi:"state"`
	}
	if err := ctx.Invoke("pulumi:pulumi:getResource", map[string]any{"urn": root}, &stack); err != nil {
		return previous{}, fmt.Errorf("read the stack's last outputs: %w", err)
	}
	text := func(output string) string {
		s, _ := stack.State[output].(string)
		return s
	}
	p := previous{
		caCertPEM: text(OutputCACertPEM), namespace: text(OutputNamespace), service: text(OutputServiceName),
		configName: text(OutputMutatingWebhookName),
	}
	p.deployed = p.configName != ""
	// A value that does not parse is no reason to stop a deployment: no warning then.
	p.servingCertExpiry, _ = time.Parse(time.RFC3339, text(OutputServingCertExpiry))
	return p, nil
}

// inPlace says whether this update rolls the Pods behind the same Service and webhook
// configuration as the last one. Then the configuration is updated before the Deployment, so a
// new CA is in caBundle before any Pod serves a certificate it signed. Otherwise (first install,
// another namespace or Service) the configuration waits for the Deployment, so the API server
// never calls a webhook that is not serving yet.
func (p previous) inPlace(cfg Config) bool {
	return p.deployed && p.namespace == cfg.Namespace && p.service == cfg.Name && p.configName == cfg.WebhookConfigName
}

// trustedBundle is the caBundle: the current CA, and the CA of the last update while it differs.
// A CA replaced in this update (pulumi-tls, or a new certificates.caBundle) is trusted beside the
// old one during the roll, when old and new Pods serve side by side; the next update, run once
// every Pod serves the new chain (`pulumi up` returns only then), drops the old CA.
func trustedBundle(current pulumi.StringOutput, previousCA string) pulumi.StringOutput {
	return current.ApplyT(func(ca string) string {
		if strings.TrimSpace(previousCA) == "" || strings.TrimSpace(previousCA) == strings.TrimSpace(ca) {
			return ca
		}
		return strings.TrimRight(ca, "\n") + "\n" + strings.TrimLeft(previousCA, "\n")
	}).(pulumi.StringOutput)
}

// warnRenewal prints a warning on every preview and up once the serving certificate the last
// update issued is inside its renewal window (this update then replaces it and rolls the Pods),
// and an error-level message once it has expired: the API server then fails every call to the
// webhook until this update has rolled the Pods.
func warnRenewal(ctx *pulumi.Context, cfg Config, prev previous) {
	if msg := renewalMessage(cfg, prev.servingCertExpiry, time.Now()); msg != "" {
		_ = ctx.Log.Warn(msg, nil)
	}
}

// renewalMessage is warnRenewal's text, "" outside the window.
func renewalMessage(cfg Config, notAfter, now time.Time) string {
	if notAfter.IsZero() {
		return ""
	}
	left := notAfter.Sub(now)
	when := notAfter.UTC().Format(time.RFC3339)
	switch {
	case left <= 0:
		return fmt.Sprintf("the webhook's serving certificate EXPIRED at %s: the API server cannot call the webhook "+
			"(failurePolicy %s: Pods are %s) until this update replaces it and rolls the Pods",
			when, cfg.FailurePolicy, map[bool]string{true: "refused", false: "admitted without their profile"}[cfg.FailurePolicy == "Fail"])
	case left <= time.Duration(cfg.EarlyRenewalHours)*time.Hour:
		return fmt.Sprintf("the webhook's serving certificate expires at %s (in %s), inside earlyRenewalHours (%dh): "+
			"`pulumi up` replaces it and rolls the Pods; if no up runs before then, admissions fail", when, roundDays(left), cfg.EarlyRenewalHours)
	}
	return ""
}

func roundDays(d time.Duration) string {
	if d < 48*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
