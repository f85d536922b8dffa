package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ai-webhook/ai-webhook/test/internal/repo"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster/netns"
)

// The test binary runs twice. First in the caller's network namespace, where
// it checks that the tools are built, builds the webhook and the deploy
// command (the module cache is there) and prepares a Pulumi work directory;
// then re-executed by unshare inside fresh network and PID namespaces
// (package netns; marked by envInside), where it starts the cluster `make up`
// starts and runs the tests. Everything the tests start dies with the PID namespace.
const (
	envInside  = "AI_WEBHOOK_E2E_INSIDE"
	envWorkDir = "AI_WEBHOOK_E2E_WORKDIR"
	envRoot    = "AI_WEBHOOK_E2E_ROOT"
	envPath    = "AI_WEBHOOK_E2E_PATH" // the pulumi CLI and the plugins
	// envTLSProvider=real runs against the real pulumi-tls plugin (installed
	// with `pulumi plugin install resource tls v5.2.0` in the default
	// PULUMI_HOME) instead of the test-only stand-in.
	envTLSProvider = "AI_WEBHOOK_E2E_TLS_PROVIDER"

	stackName  = "e2e"
	passphrase = "ai-webhook-e2e"
)

// pulumiBinaries are needed in bin/ besides the cluster's.
var pulumiBinaries = []string{"pulumi", "pulumi-resource-kubernetes", "pulumi-resource-tls"}

// env is the test environment inside the namespaces.
var env struct {
	root, workDir string
	deployBin     string
	cluster       *cluster.Cluster
}

// clusterOptions are those of `make up` (tools/localcluster), but endpoint
// updates lag by a second, as in a busy cluster: a webhook Pod that stopped
// listening as soon as it got SIGTERM would still be called (the rolling
// update test).
func clusterOptions(root, workDir string) cluster.Options {
	return cluster.Options{
		BinDir: filepath.Join(root, "bin"), StateDir: filepath.Join(workDir, "cluster"), Address: cluster.PrivateAddress,
		ControllerManager: true, Nodes: cluster.DefaultNodes, WebhookBinary: filepath.Join(workDir, "ai-webhook"),
		ControllerManagerFlags: []string{"--endpointslice-updates-batch-period=1s"},
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(envInside) != "1" {
		os.Exit(outside(m))
	}
	os.Exit(inside(m))
}

func outside(m *testing.M) int {
	root, err := repo.Root(".")
	if err != nil {
		return fatal(err)
	}
	// The webhook is built below.
	opts := clusterOptions(root, "")
	opts.WebhookBinary = ""
	if err := opts.CheckBinaries(pulumiBinaries...); err != nil {
		return fatal(err)
	}
	bin := filepath.Join(root, "bin")
	if err := netns.CheckTools(); err != nil {
		return fatal(err)
	}
	// -test.list and friends need no cluster.
	if flagSet("test.list") {
		return m.Run()
	}

	workDir, err := os.MkdirTemp("", "ai-webhook-e2e-")
	if err != nil {
		return fatal(err)
	}
	defer os.RemoveAll(workDir)
	for _, pkg := range []string{repo.Webhook, "./infra/cmd/deploy"} {
		if _, err := repo.Build(root, workDir, pkg); err != nil {
			return fatal(err)
		}
	}
	if err := prepareProject(root, filepath.Join(workDir, "project")); err != nil {
		return fatal(err)
	}
	pathDir, pulumiHome, err := pluginPath(bin, workDir)
	if err != nil {
		return fatal(err)
	}

	env := []string{
		envInside + "=1", envWorkDir + "=" + workDir, envRoot + "=" + root, envPath + "=" + pathDir,
		"PULUMI_HOME=" + pulumiHome,
		"PATH=" + pathDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"PULUMI_BACKEND_URL=file://" + filepath.Join(workDir, "state"),
		"PULUMI_CONFIG_PASSPHRASE=" + passphrase,
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
	}
	code, err := netns.RunSelf(env...)
	if err != nil {
		return fatal(err)
	}
	return code
}

// pluginPath returns the directory to put first on PATH (the pulumi CLI and
// the provider plugins, found there as ambient plugins) and the PULUMI_HOME
// to use (for the real plugin the default one, which holds installed plugins).
func pluginPath(bin, workDir string) (string, string, error) {
	switch os.Getenv(envTLSProvider) {
	case "", "standin":
		return bin, filepath.Join(workDir, "pulumi-home"), nil
	case "real":
		// Everything from bin but the stand-in, so the engine loads the
		// installed pulumi-tls plugin.
		dir := filepath.Join(workDir, "path")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", err
		}
		for _, name := range []string{"pulumi", "pulumi-resource-kubernetes"} {
			if err := os.Symlink(filepath.Join(bin, name), filepath.Join(dir, name)); err != nil {
				return "", "", err
			}
		}
		home, err := os.UserHomeDir()
		return dir, filepath.Join(home, ".pulumi"), err
	default:
		return "", "", fmt.Errorf("%s must be standin or real", envTLSProvider)
	}
}

// prepareProject copies Pulumi.yaml and the dev stack's config (as the e2e
// stack's) into dir: the test changes stack config, and that must not touch
// the repository's files.
func prepareProject(root, dir string) error {
	// Pulumi.yaml says main: infra/, and the engine checks that the directory
	// exists even though the deploy command serves the program itself.
	if err := os.MkdirAll(filepath.Join(dir, "infra"), 0o755); err != nil {
		return err
	}
	for src, dst := range map[string]string{"Pulumi.yaml": "Pulumi.yaml", "Pulumi.dev.yaml": "Pulumi." + stackName + ".yaml"} {
		data, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			return err
		}
		if dst != "Pulumi.yaml" {
			// The salt belongs to the dev stack's passphrase.
			data = dropLines(data, "encryptionsalt:")
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func dropLines(data []byte, prefix string) []byte {
	var keep []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, prefix) {
			keep = append(keep, l)
		}
	}
	return []byte(strings.Join(keep, "\n"))
}

func inside(m *testing.M) int {
	if flagSet("test.list") {
		return m.Run()
	}
	if err := netns.Setup(); err != nil {
		return fatal(err)
	}
	env.root, env.workDir = os.Getenv(envRoot), os.Getenv(envWorkDir)
	env.deployBin = filepath.Join(env.workDir, "deploy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := cluster.Start(ctx, clusterOptions(env.root, env.workDir))
	if err != nil {
		if c != nil {
			c.Report(os.Stderr)
		}
		return fatal(err)
	}
	fmt.Printf("local cluster ready in %v\n", time.Since(start).Round(time.Millisecond))
	env.cluster = c
	code := m.Run()
	if code != 0 {
		c.Report(os.Stderr)
	}
	c.Stop()
	return code
}

func flagSet(name string) bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-"+name) || strings.HasPrefix(a, "--"+name) {
			return true
		}
	}
	return false
}

func fatal(err error) int {
	fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
	return 1
}
