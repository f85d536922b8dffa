package serverload

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroup is a memory cgroup of our own, a child of the one this test runs in, so the server
// gets a hard limit like the container's. Both cgroup v2 and v1 are handled.
type cgroup struct {
	dir string
	v2  bool
}

// newCgroup creates the cgroup with limit bytes of memory, or says why it cannot.
func newCgroup(name string, limit int64) (*cgroup, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	var v2path, v1path string
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2path = parts[2]
		case strings.Contains(","+parts[1]+",", ",memory,"):
			v1path = parts[2]
		}
	}
	var cg *cgroup
	switch {
	case v1path != "":
		cg = &cgroup{dir: filepath.Join("/sys/fs/cgroup/memory", v1path, name)}
	case fileExists("/sys/fs/cgroup/cgroup.controllers"):
		parent := filepath.Join("/sys/fs/cgroup", v2path)
		ctl, _ := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
		if !strings.Contains(" "+string(ctl)+" ", " memory ") && !strings.Contains(string(ctl), "memory") {
			return nil, fmt.Errorf("cgroup v2: the memory controller is not enabled for children of %s", parent)
		}
		cg = &cgroup{dir: filepath.Join(parent, name), v2: true}
	default:
		return nil, fmt.Errorf("no memory cgroup found in /proc/self/cgroup")
	}
	if err := os.Mkdir(cg.dir, 0o755); err != nil && !os.IsExist(err) {
		return nil, err
	}
	limitFile := "memory.limit_in_bytes"
	if cg.v2 {
		limitFile = "memory.max"
	}
	if err := os.WriteFile(filepath.Join(cg.dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		cg.remove()
		return nil, fmt.Errorf("set %s: %w", limitFile, err)
	}
	if cg.v2 {
		_ = os.WriteFile(filepath.Join(cg.dir, "memory.swap.max"), []byte("0"), 0o644)
	}
	return cg, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (c *cgroup) procsFile() string { return filepath.Join(c.dir, "cgroup.procs") }

func (c *cgroup) read(name string) int64 {
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// peak is the most memory the cgroup has held (-1 when the kernel does not say).
func (c *cgroup) peak() int64 {
	if c.v2 {
		return c.read("memory.peak")
	}
	return c.read("memory.max_usage_in_bytes")
}

// oomKills is how many processes the kernel killed in the cgroup for lack of memory.
func (c *cgroup) oomKills() int64 {
	name := "memory.oom_control"
	if c.v2 {
		name = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// remove deletes the cgroup; it must be empty (the server has exited).
func (c *cgroup) remove() { _ = os.Remove(c.dir) }
