package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ai-webhook/ai-webhook/test/internal/repo"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster/netns"
)

// The test binary runs twice: first in the caller's network namespace, where
// it checks prerequisites and builds the webhook binary (the Go module cache
// and the network are there), then re-executed by `unshare` inside fresh
// network and PID namespaces (package netns), marked by envInNetns. Inside,
// lo is brought up and 10.250.0.0/16 is routed to it, so every address of that
// range is local: the webhook listens on 0.0.0.0 and EndpointSlices can name
// 10.250.0.x (they reject loopback addresses). The PID namespace makes sure etcd,
// kube-apiserver and the webhook die with the test, however it ends.
const (
	envInNetns    = "AI_WEBHOOK_CONTROLPLANE_IN_NETNS"
	envWebhookBin = "AI_WEBHOOK_CONTROLPLANE_WEBHOOK_BIN"
	envRepoRoot   = "AI_WEBHOOK_CONTROLPLANE_ROOT"
	envWorkDir    = "AI_WEBHOOK_CONTROLPLANE_WORKDIR"
)

func TestMain(m *testing.M) {
	if os.Getenv(envInNetns) != "1" {
		os.Exit(runOutsideNetns())
	}
	os.Exit(runInsideNetns(m))
}

// runOutsideNetns prepares what needs the host (module cache, build) and runs
// the test binary again inside private namespaces, returning its exit code.
func runOutsideNetns() int {
	root, err := repo.Root(".")
	if err != nil {
		return fatal(err)
	}
	if err := (cluster.Options{BinDir: filepath.Join(root, "bin")}).CheckBinaries(); err != nil {
		return fatal(err)
	}
	if err := netns.CheckTools(); err != nil {
		return fatal(err)
	}
	workDir, err := os.MkdirTemp("", "ai-webhook-controlplane-")
	if err != nil {
		return fatal(err)
	}
	defer os.RemoveAll(workDir)
	bin, err := repo.Build(root, workDir, repo.Webhook)
	if err != nil {
		return fatal(err)
	}
	code, err := netns.RunSelf(
		envInNetns+"=1",
		envWebhookBin+"="+bin,
		envRepoRoot+"="+root,
		envWorkDir+"="+workDir,
	)
	if err != nil {
		return fatal(err)
	}
	return code
}

// runInsideNetns sets up the namespace's network, runs the tests and stops
// the control plane and the webhook they started.
func runInsideNetns(m *testing.M) int {
	if err := netns.Setup(); err != nil {
		return fatal(err)
	}
	code := m.Run() // the first test starts the fixture (requireControlPlane)
	if fx != nil && fx.cluster != nil {
		if code != 0 {
			fx.cluster.Report(os.Stderr)
		}
		fx.cluster.Stop()
	}
	return code
}

func fatal(err error) int {
	fmt.Fprintf(os.Stderr, "controlplane tests: %v\n", err)
	fmt.Println("FAIL")
	return 1
}
