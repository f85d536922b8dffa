package bench

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Usage is what /proc reports about a process.
type Usage struct {
	CPU     time.Duration // user + system time of all its threads so far
	PeakRSS int64         // VmHWM, bytes
}

// ReadUsage reads /proc/<pid>/stat and /proc/<pid>/status.
func ReadUsage(pid int) (Usage, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return Usage{}, err
	}
	stat, err1 := p.Stat()
	status, err2 := p.NewStatus()
	return Usage{CPU: time.Duration(stat.CPUTime() * float64(time.Second)), PeakRSS: int64(status.VmHWM)}, errors.Join(err1, err2)
}

// resetPeakRSS resets the kernel's VmHWM of pid (writing 5 to clear_refs), so a phase's
// peak is its own.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// PinSelf confines every thread of this process to cpus and sets GOMAXPROCS to match; it
// returns a function that undoes both. No cpus: nothing changes.
func PinSelf(cpus []int) (undo func(), err error) {
	if len(cpus) == 0 {
		return func() {}, nil
	}
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, err
	}
	if err := pin(os.Getpid(), cpuSet(cpus)); err != nil {
		return nil, err
	}
	prev := runtime.GOMAXPROCS(len(cpus))
	return func() {
		_ = pin(os.Getpid(), old)
		runtime.GOMAXPROCS(prev)
	}, nil
}

func cpuSet(cpus []int) unix.CPUSet {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return set
}

// pin applies set to every thread of process pid; threads created later inherit it from
// their creator. It lists the threads again until a pass finds none new, so a thread
// created during a pass by a thread not yet pinned is caught too.
func pin(pid int, set unix.CPUSet) error {
	done := map[int]bool{}
	for {
		threads, err := procfs.AllThreads(pid)
		if err != nil {
			return err
		}
		added := false
		for _, t := range threads {
			if done[t.PID] {
				continue
			}
			if err := unix.SchedSetaffinity(t.PID, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("pin thread %d: %w", t.PID, err)
			}
			done[t.PID], added = true, true
		}
		if !added {
			return nil
		}
	}
}

// CPULayout picks, from the CPUs this process may use, the last for the servers (and
// B2/B3) and the first for the load generator; nil when there is only one.
func CPULayout() (server, load []int, err error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, nil, err
	}
	var cpus []int
	for c := range 1024 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		return nil, nil, nil
	}
	return []int{slices.Max(cpus)}, []int{slices.Min(cpus)}, nil
}
