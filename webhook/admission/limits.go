package admission

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Limits bound what one caller can make the handler spend. Every field must be positive
// (Validate); DefaultLimits are sized for the Deployment's default 256 MiB memory limit.
type Limits struct {
	// BodyBufferBytes is the memory all request bodies being read or decided may hold at once.
	// Each request reserves its Content-Length (MaxBodyBytes when unknown) before reading, so
	// stalled uploads cannot each buffer 3 MiB without bound. An eighth is kept for bodies of
	// at most 64 KiB, so ordinary reviews still fit beside stalled large ones.
	BodyBufferBytes int64
	// Concurrent is how many reviews are decoded, decided and encoded at once: the phase whose
	// memory grows with the Pod. Requests wait QueueWait for a turn, then get a 503.
	Concurrent int
	// JSONNodes caps the objects and arrays in one review, counted before decoding: a 3 MiB
	// body of "{}," would otherwise decode to a million 400-byte containers.
	JSONNodes int
	// Containers caps containers, init containers and ephemeral containers of one Pod.
	Containers int
	// PatchOps and ResponseBytes cap the answer; over them the request fails with a 5xx.
	PatchOps      int
	ResponseBytes int
	// Warnings caps the warnings returned; the rest are summarised in one last warning.
	Warnings int
}

// DefaultLimits: far above any real Pod, far below what exhausts 256 MiB. Measured worst
// case per review in flight: its body plus ~8x its JSON nodes' decoded size (test/serverload).
func DefaultLimits() Limits {
	return Limits{
		BodyBufferBytes: 48 << 20, // 16 reviews of the maximum size
		Concurrent:      4,        // the decide phase is CPU-bound; more buys nothing on a small Pod
		JSONNodes:       20000,    // a 100-container Pod with 100 env vars each is 10,000
		Containers:      100,
		PatchOps:        5000,
		ResponseBytes:   1 << 20,
		Warnings:        20,
	}
}

// Validate says which limits are not positive.
func (l Limits) Validate() error {
	var errs []error
	for _, v := range []struct {
		flag  string
		value int64
	}{{"--max-body-buffer-bytes", l.BodyBufferBytes}, {"--max-concurrent-reviews", int64(l.Concurrent)},
		{"--max-json-nodes", int64(l.JSONNodes)}, {"--max-containers", int64(l.Containers)}, {"--max-patch-ops", int64(l.PatchOps)},
		{"--max-response-bytes", int64(l.ResponseBytes)}, {"--max-warnings", int64(l.Warnings)}} {
		if v.value <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", v.flag, v.value))
		}
	}
	if l.BodyBufferBytes > 0 && l.BodyBufferBytes*7/8 < MaxBodyBytes {
		errs = append(errs, fmt.Errorf("--max-body-buffer-bytes %d must hold one maximal body (%d bytes) beside the eighth kept for small ones", l.BodyBufferBytes, MaxBodyBytes))
	}
	return errors.Join(errs...)
}

// smallBody is the size of an ordinary review (a Pod is a few KiB); bodies up to it may use the
// last eighth of the body buffer, which large bodies must leave free.
const smallBody = 64 << 10

// budget is a counting allowance that, unlike a FIFO semaphore, lets a small reservation pass
// while a large one waits, and keeps a share for small ones only: ordinary reviews are never
// queued behind stalled 3 MiB uploads.
type budget struct {
	mu      sync.Mutex
	free    int64
	reserve int64 // left for reservations of at most smallBody
	changed chan struct{}
}

func newBudget(n int64) *budget {
	return &budget{free: n, reserve: n / 8, changed: make(chan struct{})}
}

// acquire takes n, waiting until it is free or ctx ends; it reports whether n was taken.
func (b *budget) acquire(ctx context.Context, n int64) bool {
	floor := b.reserve
	if n <= smallBody {
		floor = 0
	}
	for {
		b.mu.Lock()
		if b.free-n >= floor {
			b.free -= n
			b.mu.Unlock()
			return true
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.free += n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// jsonNodes counts the objects and arrays in a JSON document without decoding it: each one
// becomes at least one allocation when decoded, a Go struct of up to ~400 bytes for a Pod.
func jsonNodes(b []byte) int {
	n := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			n++
		}
	}
	return n
}
