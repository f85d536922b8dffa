package cluster

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Command says how to start a process.
type Command struct {
	Name string   // for messages
	Argv []string // program and arguments
	Env  []string // added to this process's environment
	Log  string   // file receiving stdout and stderr (appended)
}

// Process is a child process (a control-plane component, a webhook server)
// logging to a file. It is killed if this process dies.
type Process struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
	err  error         // its exit status, once done is closed
}

// StartProcess starts c.
func StartProcess(c Command) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(c.Log), 0o755); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child holds its own copy
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	p := &Process{Name: c.Name, Log: c.Log, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// PID of the process.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Failure is nil while the process runs; once it has exited, an error with
// its exit status and the end of its log.
func (p *Process) Failure() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.Name, p.err, p.Log, Tail(p.Log, 30))
	default:
		return nil
	}
}

// Stop sends SIGTERM and kills the process if it has not exited after grace.
// It returns how the process ended (ExitCode is -1 when a signal ended it).
func (p *Process) Stop(grace time.Duration) *os.ProcessState {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.cmd.ProcessState
}

// Tail returns the last lines of a log file, for failure reports.
func Tail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const window = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		_, _ = f.Seek(-window, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	all := strings.Split(strings.TrimRight(string(bytes.ToValidUTF8(data, nil)), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// Wait calls check until it returns nil. It fails when timeout passes, ctx
// ends, or a watched process exits (saying why, with the end of its log).
func Wait(ctx context.Context, timeout time.Duration, check func(context.Context) error, watched ...*Process) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, p := range watched {
			if err := p.Failure(); err != nil {
				return false, err
			}
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		last = check(ctx)
		return last == nil, nil
	})
	if wait.Interrupted(err) {
		return fmt.Errorf("still failing after %v: %w", timeout, cmp.Or(last, err))
	}
	return err
}

// Eventually is Wait for tests: it fails t, naming what it waited for.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	if err := Wait(context.Background(), timeout, func(context.Context) error { return check() }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
