// Command ai-webhook is the AI workload injector: `serve` runs the admission server,
// `inject` previews what a profile does to a Pod offline, `validate` checks a profile file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
	"github.com/ai-webhook/ai-webhook/webhook/server"
)

const usage = `ai-webhook injects AI/ML workload settings into Pods from named profiles.

Usage:
  ai-webhook serve    [flags]   run the admission server (TLS)
  ai-webhook inject   -f pod.yaml [--profiles-file F] [--domain D] [--facts F | --kubeconfig K] [--patch | --explain]
                                preview the Pods of a file offline: mutated, JSON patch, or per-field account
  ai-webhook validate --profiles-file F [--domain D]
                                check a profile file; exit 1 with every problem listed
  ai-webhook audit    --kubeconfig K [--profiles-file F | --from-cluster] [--domain D] [--config C] [--webhook W] [-o table|json]
                                list the running Pods today's profiles would change (no stamp, old hash), by workload
  ai-webhook policy   [--profiles-file F] [--domain D] [--namespace-mode optIn|optOut|all|custom] [--failure-policy Ignore|Fail]
                                print each profile as a MutatingAdmissionPolicy and binding (no server); refusals on stderr

Run 'ai-webhook <command> -h' for the flags of a command.
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ai-webhook:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks command-line mistakes (exit 2) apart from failures (exit 1).
type usageError struct{ error }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("a command is required")}
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "inject":
		return injectCmd(args[1:], stdin, stdout, stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "audit":
		return auditCmd(args[1:], stdout, stderr)
	case "policy":
		return policyCmd(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg server.Config
	var level slog.Level
	fs.StringVar(&cfg.Listen, "listen", ":8443", "address to serve TLS on")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "plain-HTTP address serving only /metrics for Prometheus, e.g. :9090 (empty: none; the TLS port serves /metrics either way)")
	fs.StringVar(&cfg.CertFile, "tls-cert-file", "/etc/ai-webhook/tls/tls.crt", "serving certificate (PEM), reloaded when it changes")
	fs.StringVar(&cfg.KeyFile, "tls-key-file", "/etc/ai-webhook/tls/tls.key", "serving key (PEM), reloaded when it changes")
	fs.StringVar(&cfg.ProfilesFile, "profiles-file", "/etc/ai-webhook/profiles/profiles.yaml", "profile file, reloaded when it changes")
	fs.StringVar(&cfg.Domain, "domain", profile.DefaultDomain, "prefix of the label and annotation keys (<domain>/profile, /inject, /injected)")
	fs.DurationVar(&cfg.ReloadInterval, "reload-interval", 2*time.Second, "how often the certificate and profile files are checked for changes")
	fs.DurationVar(&cfg.ShutdownDelay, "shutdown-delay", 5*time.Second, "after SIGTERM, keep serving this long with /readyz failing")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long in-flight requests may take to finish (at least the longest request life, see README)")
	clusterFacts := fs.String("cluster-facts", clusterFactsOff, "on: watch RuntimeClasses and PriorityClasses and leave out a class the cluster lacks (/readyz waits for the first list); off: decide without the cluster")
	kubeconfig := fs.String("kubeconfig", "", "with --cluster-facts or --pods-out-of-date-metric on: the cluster to read (default: the in-cluster ServiceAccount)")
	podsMetric := fs.String("pods-out-of-date-metric", clusterFactsOff, "on: watch every Pod's metadata (list, watch pods) and export ai_webhook_pods_out_of_date{profile}; off: not")
	cfg.AddLimitFlags(fs)
	fs.TextVar(&level, "log-level", slog.LevelInfo, "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if *clusterFacts != clusterFactsOff && *clusterFacts != clusterFactsOn {
		return usageError{fmt.Errorf("--cluster-facts must be on or off, got %q", *clusterFacts)}
	}
	if *podsMetric != clusterFactsOff && *podsMetric != clusterFactsOn {
		return usageError{fmt.Errorf("--pods-out-of-date-metric must be on or off, got %q", *podsMetric)}
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := server.SetMemoryLimit(os.Getenv, log); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *clusterFacts == clusterFactsOn {
		w, err := startWatcher(ctx, *kubeconfig, log)
		if err != nil {
			return err
		}
		cfg.Cluster = w
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	if *podsMetric == clusterFactsOn {
		if err := watchPodDrift(ctx, *kubeconfig, cfg.Domain, srv); err != nil {
			return err
		}
	}
	return srv.Run(ctx, nil)
}

func validate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("profiles-file", "", "profile file to check (required)")
	domain := fs.String("domain", profile.DefaultDomain, "prefix of the webhook's own keys, which a profile may not set")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *file == "" {
		return usageError{errors.New("validate: --profiles-file is required")}
	}
	set, err := readProfiles(*file, *domain)
	if err != nil {
		return err
	}
	for _, n := range set.Names() {
		p, _ := set.Get(n)
		fmt.Fprintf(stdout, "%s\t%s\n", p.Stamp, p.Description)
	}
	return nil
}
