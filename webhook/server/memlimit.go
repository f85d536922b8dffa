package server

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/api/resource"
)

// EnvMemoryLimit carries the container's memory limit (bytes, or a Kubernetes quantity such as
// 256Mi). The Deployment sets it from the downward API (resourceFieldRef limits.memory).
const EnvMemoryLimit = "AI_WEBHOOK_MEMORY_LIMIT"

// envGoMemLimit, set explicitly, is the runtime's own setting and wins.
const envGoMemLimit = "GOMEMLIMIT"

// minContainerMemory refuses limits too small to be meant: a downward-API divisor other than 1
// (e.g. 1Mi turns 256Mi into "256") would otherwise make the garbage collector run constantly.
const minContainerMemory = 16 << 20

// Memory limit sources, as logged.
const (
	memLimitFromGoMemLimit = envGoMemLimit
	memLimitFromContainer  = EnvMemoryLimit
	memLimitNone           = "none"
)

// MemoryLimit decides the Go runtime's soft memory limit: GOMEMLIMIT when set (the runtime read
// it at start), otherwise 90% of the container's limit from EnvMemoryLimit, otherwise none. The
// tenth left over is for what the soft limit does not hold back: memory outside the Go heap
// (thread stacks, runtime overhead, the kernel's socket buffers charged to the cgroup) and the
// garbage collector's lag, so the runtime collects harder before the kernel kills the container.
func MemoryLimit(getenv func(string) string) (limit int64, source string, err error) {
	if getenv(envGoMemLimit) != "" {
		return debug.SetMemoryLimit(-1), memLimitFromGoMemLimit, nil
	}
	v := getenv(EnvMemoryLimit)
	if v == "" {
		return 0, memLimitNone, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return 0, "", fmt.Errorf("%s %q: want the container's memory limit in bytes or as a quantity (268435456, 256Mi): %w", EnvMemoryLimit, v, err)
	}
	bytes := q.Value()
	if bytes < minContainerMemory {
		return 0, "", fmt.Errorf("%s %q: %d bytes is below 16Mi; is the downward API's divisor other than 1?", EnvMemoryLimit, v, bytes)
	}
	return bytes / 10 * 9, memLimitFromContainer, nil
}

// SetMemoryLimit applies MemoryLimit to the runtime and logs it.
func SetMemoryLimit(getenv func(string) string, log *slog.Logger) error {
	limit, source, err := MemoryLimit(getenv)
	if err != nil {
		return err
	}
	switch source {
	case memLimitNone:
		log.Info("memory limit", "source", source)
		return nil
	case memLimitFromContainer:
		debug.SetMemoryLimit(limit)
	}
	log.Info("memory limit", "bytes", limit, "source", source)
	return nil
}
