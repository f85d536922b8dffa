// Command cert-manager-controller runs cert-manager's controller for the
// Issuer/Certificate issuance the stack's certManager mode needs (the control
// loops of github.com/cert-manager/cert-manager/pkg/controller, from the
// module's root; its own main package lives in a separate module that is not
// served here) against a cluster, for the control-plane tests.
//
//	cert-manager-controller --kubeconfig FILE [--v N]
//
// Only these loops run, cluster-wide: the Issuer controller (with the SelfSigned
// and CA issuers), the CertificateRequest approver and signers for SelfSigned
// and CA, and the Certificate loops that trigger, key, request, issue into the
// Secret, mark ready and prune old requests. Nothing for ClusterIssuers, ACME,
// Vault, Venafi, ingress/Gateway shims or CertificateSigningRequests; no leader
// election, no metrics or health server; no cert-manager webhook (the CRDs
// serve v1 only, without conversion, and the tests create valid objects).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"k8s.io/klog/v2"

	// Each registers its control loop with controller.Register, by the name in loops.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// The issuer kinds the Issuer controller sets up and checks (issuer.RegisterIssuer).
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// loops are the registered names of the control loops this command runs.
var loops = []string{
	"issuers",
	"certificaterequests-approver",
	"certificaterequests-issuer-selfsigned",
	"certificaterequests-issuer-ca",
	"certificates-trigger",
	"certificates-key-manager",
	"certificates-request-manager",
	"certificates-issuing",
	"certificates-readiness",
	"certificates-revision-manager",
}

// workers per control loop: the tests hold a handful of Certificates.
const workers = 2

func main() {
	fs := flag.NewFlagSet("cert-manager-controller", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster (required)")
	klog.InitFlags(fs) // --v: cert-manager logs at levels 0 (errors) to 5 (trace)
	_ = fs.Parse(os.Args[1:])
	if err := run(*kubeconfig); err != nil {
		fmt.Fprintf(os.Stderr, "cert-manager-controller: %v\n", err)
		os.Exit(1)
	}
}

func run(kubeconfig string) error {
	if kubeconfig == "" {
		return errors.New("--kubeconfig is required")
	}
	klog.EnableContextualLogging(true)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log, "controller")

	factory, err := controller.NewContextFactory(ctx, controller.ContextOptions{
		Kubeconfig: kubeconfig,
		CertificateOptions: controller.CertificateOptions{
			// cert-manager's defaults: a failed request is retried after 1h, doubling to 32h.
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	})
	if err != nil {
		return err
	}

	// Construct every loop before any informer starts: constructing one asks the shared
	// factories for the informers it needs, and a factory starts only those asked for.
	known := controller.Known()
	constructed := make(map[string]controller.Interface, len(loops))
	for _, name := range loops {
		construct, ok := known[name]
		if !ok {
			return fmt.Errorf("no control loop registered as %q", name)
		}
		loop, err := construct(factory)
		if err != nil {
			return fmt.Errorf("control loop %s: %w", name, err)
		}
		constructed[name] = loop
	}
	shared, err := factory.Build()
	if err != nil {
		return err
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())

	// Each loop waits for its informers to sync, then works until ctx ends (SIGTERM); one that
	// fails stops them all.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for name, loop := range constructed {
		wg.Go(func() {
			if err := loop.Run(workers, ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("control loop %s: %w", name, err))
				mu.Unlock()
				stop()
			}
		})
	}
	klog.FromContext(ctx).Info("running", "loops", loops)
	wg.Wait()
	return errors.Join(errs...)
}
