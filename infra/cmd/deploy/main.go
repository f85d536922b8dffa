// Command deploy runs the ai-webhook Pulumi program (webhookstack.Program, the
// very function infra/main.go hands to pulumi.Run) through the Pulumi
// Automation API. It uses the repository's Pulumi.yaml and
// Pulumi.<stack>.yaml, and needs the `pulumi` CLI and the provider plugins,
// but no Go language host: this process serves the program itself.
//
//	deploy [flags] up|preview|refresh|destroy|outputs
//
// The backend and the secrets passphrase come from the usual Pulumi
// environment variables (PULUMI_BACKEND_URL, e.g. file:///path/to/state, and
// PULUMI_CONFIG_PASSPHRASE); `make up` sets them for the local cluster.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/ai-webhook/ai-webhook/infra/webhookstack"
)

const usage = `Usage: deploy [flags] COMMAND

Runs the ai-webhook Pulumi program (infra/webhookstack) with the Automation API.

Commands:
  up        create or update the stack's resources
  preview   show what up would change
  refresh   reconcile the state with what exists in the cluster
  destroy   delete every resource of the stack
  outputs   print the stack outputs

Environment:
  PULUMI_BACKEND_URL        state backend, e.g. file:///abs/path (created if missing)
  PULUMI_CONFIG_PASSPHRASE  passphrase of the stack's secrets
  PULUMI_SKIP_UPDATE_CHECK  defaults to true here
  PATH                      must hold the pulumi CLI; provider plugins come from PATH
                            (pulumi-resource-kubernetes, pulumi-resource-tls) or from
                            "pulumi plugin install"

Flags:
`

// options are the parsed command line.
type options struct {
	command         string
	stack           string
	workDir         string
	jsonOut         bool
	showSecrets     bool
	expectNoChanges bool
	diff            bool
	refresh         bool
	replace         []string
	config          []string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := deploy(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// deploy runs one command line and returns the exit code: 0, 1 when the operation failed, 2 for
// a bad command line.
func deploy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "deploy: %v\n", err)
		return 2
	}
	if err := run(ctx, opts, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "deploy %s: %v\n", opts.command, cliError(err))
		return 1
	}
	return 0
}

// cliError shortens the Automation API's error for a failed CLI run, which repeats the CLI's
// whole stdout (shown as it ran) and stderr after a "\ncode: N" line: only stderr is kept.
func cliError(err error) string {
	head, rest, found := strings.Cut(err.Error(), "\ncode: ")
	if !found {
		return err.Error()
	}
	if _, stderr, _ := strings.Cut(rest, "\nstderr: "); strings.TrimSpace(stderr) != "" {
		return head + ":\n" + strings.TrimSpace(stderr)
	}
	return head
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.stack, "stack", "dev", "stack name (its config is Pulumi.<stack>.yaml)")
	fs.StringVar(&o.workDir, "cwd", "", "directory holding Pulumi.yaml (default: the nearest one above the working directory)")
	fs.BoolVar(&o.jsonOut, "json", false, "print a JSON summary on stdout (progress goes to stderr)")
	fs.BoolVar(&o.showSecrets, "show-secrets", false, "outputs: print secret values")
	fs.BoolVar(&o.expectNoChanges, "expect-no-changes", false, "up, preview, refresh: fail if anything would change")
	fs.BoolVar(&o.diff, "diff", false, "show detailed property diffs")
	fs.BoolVar(&o.refresh, "refresh", false, "up: refresh the state from the cluster first (objects deleted behind Pulumi's back are recreated)")
	fs.Var((*listFlag)(&o.replace), "replace", "up, preview: URN of a resource to replace (repeatable), e.g. to force certificate renewal")
	fs.Var((*listFlag)(&o.config), "config", "set stack config before running, as KEY=VALUE with --path semantics, e.g. namespaceSelector.mode=optOut (repeatable; written to Pulumi.<stack>.yaml)")
	// Accept flags before and after the command.
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return o, errors.New("missing command")
	}
	o.command = rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if !slices.Contains([]string{"up", "preview", "refresh", "destroy", "outputs"}, o.command) {
		return o, fmt.Errorf("unknown command %q (want up, preview, refresh, destroy or outputs)", o.command)
	}
	for _, kv := range o.config {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return o, fmt.Errorf("--config %q: want KEY=VALUE", kv)
		}
	}
	return o, nil
}

// Summary is what --json prints: the result of the operation, the changes
// by kind, every step that was not "same", and (up, outputs) the outputs.
type Summary struct {
	Operation string         `json:"operation"`
	Stack     string         `json:"stack"`
	Result    string         `json:"result"`
	Changes   map[string]int `json:"changes,omitempty"`
	Steps     []Step         `json:"steps,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
}

// Step is one resource operation of the engine.
type Step struct {
	Op   string `json:"op"`
	Type string `json:"type"`
	URN  string `json:"urn"`
}

// changeOptions turns the flags up and preview share (--expect-no-changes, --diff, --replace)
// into options; each operation has its own option type, so it passes its constructors.
func changeOptions[O any](o options, expectNoChanges, diff func() O, replace func([]string) O) []O {
	var opts []O
	if o.expectNoChanges {
		opts = append(opts, expectNoChanges())
	}
	if o.diff {
		opts = append(opts, diff())
	}
	if len(o.replace) > 0 {
		opts = append(opts, replace(o.replace))
	}
	return opts
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if err := prepareEnv(); err != nil {
		return err
	}
	workDir, err := findWorkDir(o.workDir)
	if err != nil {
		return err
	}
	stack, err := auto.UpsertStackLocalSource(ctx, o.stack, workDir, auto.Program(webhookstack.Program))
	if err != nil {
		return err
	}
	progress := stdout
	if o.jsonOut {
		progress = stderr
	}
	for _, kv := range o.config {
		k, v, _ := strings.Cut(kv, "=")
		if err := stack.SetConfigWithOptions(ctx, k, auto.ConfigValue{Value: v}, &auto.ConfigOptions{Path: true}); err != nil {
			return fmt.Errorf("--config %s: %w", k, err)
		}
		fmt.Fprintf(progress, "config set %s (%s)\n", k, describeValue(v))
	}
	// The collector ends when the operation returns, whether or not the CLI ever connected to
	// the event stream (the Automation API closes evs only once it has).
	evs := make(chan events.EngineEvent)
	opDone := make(chan struct{})
	stepsDone := make(chan []Step, 1)
	go func() { stepsDone <- collectSteps(evs, opDone) }()

	sum := Summary{Operation: o.command, Stack: o.stack, Result: "succeeded"}
	var (
		runErr  error
		outputs auto.OutputMap
		changes map[string]int
	)
	switch o.command {
	case "up":
		// The outputs are printed below, complete (the progress display truncates them).
		opts := append([]optup.Option{optup.ProgressStreams(progress), optup.EventStreams(evs), optup.SuppressOutputs()},
			changeOptions(o, optup.ExpectNoChanges, optup.Diff, optup.Replace)...)
		if o.refresh {
			opts = append(opts, optup.Refresh())
		}
		var res auto.UpResult
		res, runErr = stack.Up(ctx, opts...)
		outputs, changes = res.Outputs, summaryChanges(res.Summary)
	case "preview":
		opts := append([]optpreview.Option{optpreview.ProgressStreams(progress), optpreview.EventStreams(evs)},
			changeOptions(o, optpreview.ExpectNoChanges, optpreview.Diff, optpreview.Replace)...)
		var res auto.PreviewResult
		res, runErr = stack.Preview(ctx, opts...)
		changes = map[string]int{}
		for op, n := range res.ChangeSummary {
			changes[string(op)] = n
		}
	case "refresh":
		opts := []optrefresh.Option{optrefresh.ProgressStreams(progress), optrefresh.EventStreams(evs)}
		if o.expectNoChanges {
			opts = append(opts, optrefresh.ExpectNoChanges())
		}
		var res auto.RefreshResult
		res, runErr = stack.Refresh(ctx, opts...)
		changes = summaryChanges(res.Summary)
	case "destroy":
		var res auto.DestroyResult
		res, runErr = stack.Destroy(ctx, optdestroy.ProgressStreams(progress), optdestroy.EventStreams(evs))
		changes = summaryChanges(res.Summary)
	case "outputs":
		outputs, runErr = stack.Outputs(ctx)
	}
	close(opDone)
	sum.Steps = <-stepsDone
	sum.Changes = changes
	if runErr != nil {
		sum.Result = "failed"
	}
	if outputs != nil {
		sum.Outputs = map[string]any{}
		for k, v := range outputs {
			if v.Secret && !o.showSecrets {
				sum.Outputs[k] = "[secret]"
			} else {
				sum.Outputs[k] = v.Value
			}
		}
	}

	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else if sum.Outputs != nil {
		printOutputs(stdout, sum.Outputs)
	}
	return runErr
}

// collectSteps drains the engine events and keeps every step that changed
// something. It ends when the Automation API closes evs or, at the latest, when
// opDone is closed: the operation has returned, so the SDK has handed over every
// event (its watcher's Close waits for that), and if the CLI failed before
// connecting to the event stream, evs is never closed.
func collectSteps(evs <-chan events.EngineEvent, opDone <-chan struct{}) []Step {
	var steps []Step
	for {
		var ev events.EngineEvent
		select {
		case e, ok := <-evs:
			if !ok {
				return steps
			}
			ev = e
		case <-opDone:
			return steps
		}
		if ev.ResourcePreEvent == nil {
			continue
		}
		md := ev.ResourcePreEvent.Metadata
		// A refresh visits every resource; --expect-no-changes and the change
		// counts tell whether anything differed.
		if md.Op == "same" || md.Op == "read" || md.Op == "refresh" {
			continue
		}
		steps = append(steps, Step{Op: string(md.Op), Type: md.Type, URN: md.URN})
	}
}

// describeValue names a config value by its size and digest: a value can be a whole profiles
// document, or a secret.
func describeValue(v string) string {
	sum := sha256.Sum256([]byte(v))
	return fmt.Sprintf("%d bytes, sha256 %x", len(v), sum[:6])
}

func summaryChanges(s auto.UpdateSummary) map[string]int {
	if s.ResourceChanges == nil {
		return nil
	}
	return *s.ResourceChanges
}

func printOutputs(w io.Writer, outputs map[string]any) {
	keys := make([]string, 0, len(outputs))
	for k := range outputs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintln(w, "Outputs:")
	for _, k := range keys {
		v := outputs[k]
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		if strings.Contains(s, "\n") {
			// PEM and other multi-line values: indent under the key.
			s = "|\n    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
		}
		fmt.Fprintf(w, "  %s: %s\n", k, s)
	}
}

// prepareEnv applies offline-friendly defaults and creates a local file
// backend's directory.
func prepareEnv() error {
	if _, ok := os.LookupEnv("PULUMI_SKIP_UPDATE_CHECK"); !ok {
		if err := os.Setenv("PULUMI_SKIP_UPDATE_CHECK", "true"); err != nil {
			return err
		}
	}
	backend := os.Getenv("PULUMI_BACKEND_URL")
	if !strings.HasPrefix(backend, "file://") {
		return nil
	}
	u, err := url.Parse(backend)
	if err != nil {
		return fmt.Errorf("PULUMI_BACKEND_URL %q: %w", backend, err)
	}
	dir := u.Path
	if u.Host != "" && u.Host != "localhost" {
		dir = filepath.Join(u.Host, u.Path) // file://relative/path
	}
	if dir == "" || dir == "~" {
		return nil
	}
	return os.MkdirAll(dir, 0o755)
}

// findWorkDir returns dir, or the nearest directory at or above the working
// directory that holds Pulumi.yaml.
func findWorkDir(dir string) (string, error) {
	if dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err != nil {
			return "", fmt.Errorf("--cwd %s: no Pulumi.yaml there", dir)
		}
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "Pulumi.yaml")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no Pulumi.yaml in %s or above: pass --cwd with the repository root", wd)
		}
	}
}
