// Package reference is the webhook ai-webhook is measured against: the same profiles
// applied to the same Pods, written the way controller-runtime users write a mutating
// webhook. The handler decodes the Pod with the admission decoder, mutates it (with
// ai-webhook's own inject.Mutate, so both servers make the same decision), marshals it and
// lets admission.PatchResponseFromRaw diff the result against the request's raw object.
// The server is controller-runtime's webhook.Server with HTTP/2 disabled, as the kubebuilder
// scaffold configures it.
package reference

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// Mutator is the admission.Handler: the part a controller-runtime user writes.
type Mutator struct {
	Profiles *profile.Set
	Keys     profile.Keys
	Decoder  admission.Decoder
}

// Handle implements admission.Handler.
func (m *Mutator) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create {
		return admission.Allowed("only CREATE is mutated")
	}
	pod := &corev1.Pod{}
	if err := m.Decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	res, err := inject.Mutate(pod, m.Profiles, m.Keys)
	var refused *inject.RefusedError
	switch {
	case errors.As(err, &refused):
		return admission.Denied(refused.Reason)
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, err)
	case res.Profile == nil:
		return admission.Allowed(res.Reason)
	}
	marshaled, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	resp := admission.PatchResponseFromRaw(req.Object.Raw, marshaled)
	resp.Warnings = res.Warnings()
	return resp
}

// NewWebhook is the http.Handler for /mutate.
func NewWebhook(set *profile.Set, domain string) *admission.Webhook {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		panic(err) // a static scheme; cannot fail
	}
	return &admission.Webhook{Handler: &Mutator{Profiles: set, Keys: profile.KeysFor(domain), Decoder: admission.NewDecoder(scheme)}}
}

// Main is the reference server's command line:
//
//	reference --listen=127.0.0.1:9443 --cert-dir=DIR --profiles-file=PATH [--domain=D]
//
// DIR holds tls.crt and tls.key. It serves POST /mutate until SIGTERM.
func Main(args []string) error {
	fs := flag.NewFlagSet("reference", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9443", "host:port to serve TLS on")
	certDir := fs.String("cert-dir", "", "directory with tls.crt and tls.key")
	profilesFile := fs.String("profiles-file", "", "profile file")
	domain := fs.String("domain", profile.DefaultDomain, "label and annotation key prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, err := netip.ParseAddrPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	data, err := os.ReadFile(*profilesFile)
	if err != nil {
		return err
	}
	set, err := profile.Parse(data, *domain)
	if err != nil {
		return err
	}
	// Info-level structured logs to stderr, as ai-webhook writes them.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	srv := webhook.NewServer(webhook.Options{
		Host: addr.Addr().String(), Port: int(addr.Port()), CertDir: *certDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	})
	srv.Register("/mutate", NewWebhook(set, *domain))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return srv.Start(ctx)
}
