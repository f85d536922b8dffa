// Package netns runs a program in fresh network and PID namespaces, where lo
// is up and every address of PrivateRange is local. Servers can then listen
// on 10.250.x.x addresses (EndpointSlices reject loopback ones) without
// touching the machine's own network, and everything started inside dies
// with the namespace's init process, however the run ends.
//
// The controlplane and e2e test binaries re-execute themselves inside
// (RunSelf); the localcluster command of `make up` (tools/localcluster)
// starts its supervisor there in the
// background (Command, Start). Inside, the program calls Setup first.
package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

// PrivateRange is routed to lo inside the namespace.
const PrivateRange = "10.250.0.0/16"

// CheckTools reports a missing unshare or ip, saying what to install.
func CheckTools() error {
	for _, t := range []struct{ name, pkg, does string }{
		{"unshare", "util-linux", "creates the private network and PID namespaces"},
		{"ip", "iproute2", "configures the network inside them"},
	} {
		if _, err := exec.LookPath(t.name); err != nil {
			return fmt.Errorf("%s not found in PATH: install %s (apt-get install %s); it %s", t.name, t.pkg, t.pkg, t.does)
		}
	}
	return nil
}

// Command returns the unshare command that runs argv inside new network and
// PID namespaces, argv[0] being the PID namespace's init: when unshare ends,
// it is killed (--kill-child) and every process of the namespace with it.
// When not root, the namespaces belong to a new user namespace in which the
// caller is root (--map-root-user; needs unprivileged user namespaces).
func Command(argv ...string) *exec.Cmd {
	args := []string{"--net", "--pid", "--fork", "--kill-child"}
	if os.Geteuid() != 0 {
		args = append(args, "--map-root-user")
	}
	args = append(append(args, "--"), argv...)
	return exec.Command("unshare", args...)
}

// Start starts cmd (from Command), saying what is needed when that fails.
func Start(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w (creating namespaces needs root or unprivileged user namespaces)", cmd, err)
	}
	return nil
}

// RunSelf runs this program again, with the same arguments and env added to
// its environment, inside new namespaces (see Command), in the foreground on
// this process's standard streams. SIGINT and SIGTERM are passed on; if this
// process dies, unshare is killed (Pdeathsig) and the namespace with it. It
// returns the child's exit code, or an error if it could not run or was
// killed by a signal.
func RunSelf(env ...string) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := Command(append([]string{self}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := Start(cmd); err != nil {
		return 0, err
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
	close(sigs)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode(), nil
	default:
		return 0, fmt.Errorf("%s: %w", cmd, err)
	}
}

// Setup prepares the private network namespace the caller is in: lo up and
// all of PrivateRange local. It refuses to run in the machine's own network
// namespace.
func Setup() error {
	self, err1 := os.Readlink("/proc/self/ns/net")
	initNS, err2 := os.Readlink("/proc/1/ns/net")
	if err1 == nil && err2 == nil && self == initNS {
		return errors.New("refusing to change routes: this process is in the machine's own network namespace (run it under `unshare --net`)")
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"route", "add", "local", PrivateRange, "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}
