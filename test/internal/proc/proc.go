// Package proc holds what the harnesses that run servers as child processes
// share.
package proc

import (
	"os"
	"syscall"
	"time"
)

// Stop asks p to stop with SIGTERM and, if it has not exited after grace,
// kills it. exited must be closed once p has been waited for (by the
// goroutine that calls Wait); Stop returns after that.
func Stop(p *os.Process, exited <-chan struct{}, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}
