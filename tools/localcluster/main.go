// Command localcluster runs the local cluster of `make up` (package
// cluster, beside it, with everything on: etcd, kube-apiserver,
// kube-controller-manager, kwok with two GPU nodes, and the workload runner
// that runs the real ai-webhook for the webhook's Pods) in the background, in
// its own network and PID namespaces, so the machine's own network
// configuration is never touched.
//
//	localcluster up     --state DIR --bin DIR [--webhook-bin PATH]
//	localcluster down   --state DIR
//	localcluster status --state DIR
//	localcluster exec   --state DIR -- COMMAND [ARGS...]
//
// up starts the cluster (etcd, kube-apiserver, kube-controller-manager, kwok
// and the webhook workload runner) and returns once it is ready; down stops it
// and deletes DIR. exec runs a command inside the cluster's network namespace
// with KUBECONFIG pointing at the cluster, e.g. kubectl or the deploy command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster/netns"
)

const usage = `Usage:
  localcluster up     --state DIR --bin DIR [--webhook-bin PATH]
  localcluster down   --state DIR
  localcluster status --state DIR
  localcluster exec   --state DIR -- COMMAND [ARGS...]
`

// Files in the state directory.
const (
	pidFile   = "localcluster.pid" // PID of unshare, whose namespaces the cluster lives in
	readyFile = "ready"            // written by serve once the cluster is ready
	logFile   = "localcluster.log" // the supervisor's output
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	state := fs.String("state", ".local/cluster", "state directory (data, logs, kubeconfig)")
	bin := fs.String("bin", "bin", "directory holding etcd, kube-apiserver, kube-controller-manager and kwok")
	webhookBin := fs.String("webhook-bin", "", "the ai-webhook binary (default: BIN/ai-webhook)")
	timeout := fs.Duration("timeout", 3*time.Minute, "up: how long to wait for the cluster")
	_ = fs.Parse(args)
	dir, err := filepath.Abs(*state)
	if err == nil && *webhookBin == "" {
		*webhookBin = filepath.Join(*bin, "ai-webhook")
	}
	if err == nil {
		switch cmd {
		case "up":
			err = up(dir, *bin, *webhookBin, *timeout)
		case "serve":
			err = serve(dir, *bin, *webhookBin)
		case "down":
			err = down(dir)
		case "status":
			err = status(dir)
		case "exec":
			err = execIn(dir, fs.Args())
		default:
			fs.Usage()
			os.Exit(2)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// running returns the PID of the cluster's unshare process if it is alive.
func running(dir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	// Same process, not a recycled PID: its command line names our state dir.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), dir) {
		return 0, false
	}
	return pid, true
}

func up(dir, bin, webhookBin string, timeout time.Duration) error {
	if pid, ok := running(dir); ok {
		if _, err := os.Stat(filepath.Join(dir, readyFile)); err == nil {
			fmt.Printf("local cluster already running (pid %d), kubeconfig %s\n", pid, filepath.Join(dir, "kubeconfig"))
			return nil
		}
		return fmt.Errorf("a local cluster (pid %d) is starting or broken: run `localcluster down --state %s` first", pid, dir)
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if webhookBin, err = filepath.Abs(webhookBin); err != nil {
		return err
	}
	if err := options(dir, bin, webhookBin).CheckBinaries(); err != nil {
		return err
	}
	if err := netns.CheckTools(); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(dir, logFile))
	if err != nil {
		return err
	}
	defer log.Close()

	// New network and PID namespaces: the supervisor is the namespace's
	// init, so when it ends every process of the cluster ends too. It runs
	// in the background, in its own session, and outlives this command.
	cmd := netns.Command(self, "serve", "--state", dir, "--bin", bin, "--webhook-bin", webhookBin)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := netns.Start(cmd); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	fmt.Printf("starting the local cluster (logs: %s)\n", dir)
	deadline := time.After(timeout)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("the cluster exited during start (%v); last lines of %s:\n%s",
				err, log.Name(), cluster.Tail(log.Name(), 40))
		case <-deadline:
			_ = stopCluster(dir, cmd.Process.Pid)
			return fmt.Errorf("the cluster was not ready after %v; last lines of %s:\n%s", timeout, log.Name(), cluster.Tail(log.Name(), 40))
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := os.Stat(filepath.Join(dir, readyFile)); err == nil {
			fmt.Printf("local cluster ready, kubeconfig %s\n", filepath.Join(dir, "kubeconfig"))
			return nil
		}
	}
}

// serve runs inside the namespaces: it starts the cluster and keeps it
// running until SIGTERM or SIGINT.
func serve(dir, bin, webhookBin string) error {
	if err := netns.Setup(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logf := func(format string, args ...any) {
		fmt.Printf("%s %s\n", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
	}
	opts := options(dir, bin, webhookBin)
	opts.Logf = logf
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		if c != nil {
			c.Report(os.Stdout)
		}
		return err
	}
	if err := os.Symlink(c.Kubeconfig, filepath.Join(dir, "kubeconfig")); err != nil {
		c.Stop()
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, readyFile), nil, 0o644); err != nil {
		c.Stop()
		return err
	}
	logf("ready")
	<-ctx.Done()
	logf("stopping")
	_ = os.Remove(filepath.Join(dir, readyFile))
	c.Stop()
	logf("stopped")
	return nil
}

func options(dir, bin, webhookBin string) cluster.Options {
	return cluster.Options{
		BinDir: bin, StateDir: filepath.Join(dir, "cluster"), Address: cluster.PrivateAddress,
		ControllerManager: true, Nodes: cluster.DefaultNodes, WebhookBinary: webhookBin,
	}
}

func down(dir string) error {
	if pid, ok := running(dir); ok {
		if err := stopCluster(dir, pid); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Printf("local cluster stopped and %s removed\n", dir)
	return nil
}

// stopCluster asks the supervisor (unshare's child) to stop, then makes sure
// unshare and with it the namespaces are gone.
func stopCluster(dir string, pid int) error {
	if children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(children)) {
			if child, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(child, syscall.SIGTERM)
			}
		}
	}
	for range 300 { // 30 s
		if _, ok := running(dir); !ok {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond)
	if _, ok := running(dir); ok {
		return fmt.Errorf("process %d did not stop", pid)
	}
	return nil
}

func status(dir string) error {
	pid, ok := running(dir)
	if !ok {
		fmt.Println("local cluster: not running")
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, readyFile)); err != nil {
		fmt.Printf("local cluster: starting (pid %d)\n", pid)
		return nil
	}
	fmt.Printf("local cluster: running (pid %d), kubeconfig %s\n", pid, filepath.Join(dir, "kubeconfig"))
	return nil
}

// execIn replaces this process with nsenter running the command in the
// cluster's network namespace.
func execIn(dir string, argv []string) error {
	if len(argv) == 0 {
		return errors.New("missing command: localcluster exec --state DIR -- COMMAND [ARGS...]")
	}
	pid, ok := running(dir)
	if !ok {
		return errors.New("the local cluster is not running: start it with `make up`")
	}
	if _, err := os.Stat(filepath.Join(dir, readyFile)); err != nil {
		return errors.New("the local cluster is not ready yet")
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return errors.New("nsenter not found: install util-linux")
	}
	prog, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	env := append(os.Environ(), "KUBECONFIG="+filepath.Join(dir, "kubeconfig"))
	args := []string{"nsenter", "--net=/proc/" + strconv.Itoa(pid) + "/ns/net"}
	if os.Geteuid() != 0 {
		args = append(args, "--user=/proc/"+strconv.Itoa(pid)+"/ns/user", "--preserve-credentials")
	}
	args = append(args, "--", prog)
	args = append(args, argv[1:]...)
	return syscall.Exec(nsenter, args, env)
}
