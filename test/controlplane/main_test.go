package controlplane

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The test binary runs twice: first in the caller's network namespace, where
// it checks prerequisites and builds the webhook binary (the Go module cache
// and the network are there), then re-executed by `unshare` inside fresh
// network and PID namespaces, marked by envInNetns. Inside, lo is brought up
// and 10.250.0.0/24 is routed to it, so every address of that range is local:
// the webhook listens on 0.0.0.0 and EndpointSlices can name 10.250.0.x
// (they reject loopback addresses). The PID namespace makes sure etcd,
// kube-apiserver and the webhook die with the test, however it ends.
const (
	envInNetns    = "AI_WEBHOOK_CONTROLPLANE_IN_NETNS"
	envWebhookBin = "AI_WEBHOOK_CONTROLPLANE_WEBHOOK_BIN"
	envRepoRoot   = "AI_WEBHOOK_CONTROLPLANE_ROOT"
	envWorkDir    = "AI_WEBHOOK_CONTROLPLANE_WORKDIR"

	privateRange = "10.250.0.0/24"
)

// controlPlaneBinaries are the binaries of bin/ the harness runs.
var controlPlaneBinaries = []string{"kube-apiserver", "etcd"}

func TestMain(m *testing.M) {
	if os.Getenv(envInNetns) != "1" {
		os.Exit(runOutsideNetns())
	}
	os.Exit(runInsideNetns(m))
}

// runOutsideNetns prepares what needs the host (module cache, build) and runs
// the test binary again inside private namespaces, returning its exit code.
func runOutsideNetns() int {
	root, err := repoRoot()
	if err != nil {
		return fatal(err)
	}
	for _, name := range controlPlaneBinaries {
		if _, err := os.Stat(filepath.Join(root, "bin", name)); err != nil {
			return fatal(fmt.Errorf("%s is missing from %s: run `make tools` in %s to build the control plane from Go modules (tools/k8s)",
				name, filepath.Join(root, "bin"), root))
		}
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return fatal(errors.New("unshare not found in PATH: these tests run in a private network namespace; install util-linux (apt-get install util-linux)"))
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fatal(errors.New("ip not found in PATH: these tests configure lo in a private network namespace; install iproute2 (apt-get install iproute2)"))
	}
	workDir, err := os.MkdirTemp("", "ai-webhook-controlplane-")
	if err != nil {
		return fatal(err)
	}
	defer os.RemoveAll(workDir)
	bin, err := buildWebhook(root, workDir)
	if err != nil {
		return fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		return fatal(err)
	}

	args := []string{"--net", "--pid", "--kill-child"}
	if os.Geteuid() != 0 {
		// Unprivileged: a user namespace where we are root (needs
		// unprivileged user namespaces, enabled on most distributions).
		args = append(args, "--map-root-user")
	}
	args = append(args, "--", self)
	args = append(args, os.Args[1:]...)
	cmd := exec.Command(unshare, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		envInNetns+"=1",
		envWebhookBin+"="+bin,
		envRepoRoot+"="+root,
		envWorkDir+"="+workDir,
		"TMPDIR="+workDir, // envtest's etcd data and certificates go where this process removes them
	)
	// If this process is killed, unshare is killed, and --kill-child takes the
	// whole PID namespace (control plane included) with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fatal(fmt.Errorf("start %s: %w (these tests need to create network namespaces: run as root, or enable unprivileged user namespaces)", cmd, err))
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode()
	default:
		return fatal(fmt.Errorf("%s: %w", cmd, err))
	}
}

// runInsideNetns sets up the namespace's network, runs the tests and stops
// the control plane and the webhook they started.
func runInsideNetns(m *testing.M) int {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"route", "add", "local", privateRange, "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fatal(fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out))
		}
	}
	code := m.Run() // the first test starts the fixture (requireControlPlane)
	if fx != nil {
		if code != 0 {
			fx.dumpLogs(os.Stderr)
		}
		fx.stop()
	}
	return code
}

// buildWebhook builds the real webhook binary, in workspace mode from the
// repository root, as the Makefile and the image do.
func buildWebhook(root, dir string) (string, error) {
	bin := filepath.Join(dir, "ai-webhook")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ai-webhook/ai-webhook/webhook/cmd/ai-webhook")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the webhook under test (%s in %s): %v\n%s", strings.Join(cmd.Args, " "), root, err, out)
	}
	return bin, nil
}

// repoRoot is the directory holding go.work, above the package directory that
// `go test` runs in.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work above %s: run the tests from the ai-webhook repository", dir)
		}
	}
}

func fatal(err error) int {
	fmt.Fprintf(os.Stderr, "controlplane tests: %v\n", err)
	fmt.Println("FAIL")
	return 1
}
