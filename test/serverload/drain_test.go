package serverload

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

// Drain settings: short versions of the Deployment's (5s delay, 10s read timeout, 20s
// shutdown timeout, 30s grace), kept in the same order.
const (
	drainDelay        = 3 * time.Second
	drainRead         = 2 * time.Second // request life: 1s header + 7s write = 8s
	drainShutdown     = 8 * time.Second
	drainGrace        = drainDelay + drainShutdown + time.Second
	endpointLag       = 2 * time.Second // clients keep choosing this replica this long after SIGTERM
	drainClients      = 25
	trafficBeforeTerm = time.Second
)

func drainArgs() []string {
	return []string{"--shutdown-delay=" + drainDelay.String(), "--read-timeout=" + drainRead.String(),
		"--shutdown-timeout=" + drainShutdown.String()}
}

// TestDrainDropsNothing: 25 keep-alive clients (Go's net/http, as the API server) send reviews
// back to back across SIGTERM until the endpoint would be gone: not one request fails,
// responses after SIGTERM close their connections, and the process exits 0 within the grace
// period.
func TestDrainDropsNothing(t *testing.T) {
	s := start(t, nil, nil, drainArgs()...)
	ctx, stopClients := context.WithCancel(context.Background())
	var sent, failedN, closedAfterTerm atomic.Int64
	var terminated atomic.Bool
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for c := 0; c < drainClients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			client := s.client()
			for i := 0; ctx.Err() == nil; i++ {
				uid := fmt.Sprintf("client-%d-%d", c, i)
				closed, err := admit(context.Background(), client, s.url(), uid, review(t, uid, trainingPod()))
				sent.Add(1)
				if err != nil {
					failedN.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s (after SIGTERM: %v): %v", uid, terminated.Load(), err))
					mu.Unlock()
				} else if closed && terminated.Load() {
					closedAfterTerm.Add(1)
				}
			}
		}(c)
	}
	time.Sleep(trafficBeforeTerm)
	before := sent.Load()
	terminated.Store(true)
	exited := make(chan struct{})
	var code int
	var took time.Duration
	go func() { code, took = s.sigterm(drainGrace); close(exited) }()
	time.Sleep(endpointLag)
	stopClients()
	wg.Wait()
	<-exited
	t.Logf("%d clients: %d requests (%d before SIGTERM), %d failed, %d answered with Connection: close after SIGTERM; exit %d after %s",
		drainClients, sent.Load(), before, failedN.Load(), closedAfterTerm.Load(), code, took.Round(time.Millisecond))
	if failedN.Load() > 0 {
		t.Errorf("%d requests failed across SIGTERM; first: %s", failedN.Load(), failures[0])
	}
	if closedAfterTerm.Load() == 0 {
		t.Errorf("no response after SIGTERM asked the client to close its connection")
	}
	if code != 0 {
		t.Errorf("exit %d after %s, want 0 within the %s grace period\n%s", code, took, drainGrace, cluster.Tail(s.proc.Log, 30))
	}
}

// TestSlowUploaderDoesNotHoldUpShutdown: a client that connects late in the shutdown delay and
// trickles its body a byte at a time is still active when the server stops accepting; the read
// timeout cuts it off, and the server exits 0 within the grace period.
func TestSlowUploaderDoesNotHoldUpShutdown(t *testing.T) {
	s := start(t, nil, nil, drainArgs()...)
	client := s.client()
	exited := make(chan struct{})
	var code int
	var took time.Duration
	go func() { code, took = s.sigterm(drainGrace); close(exited) }()
	time.Sleep(drainDelay - 500*time.Millisecond) // new connections are still served
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, s.url(), pr)
	req.ContentLength = 100 << 10
	req.Header.Set("Content-Type", "application/json")
	answered := make(chan string, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			answered <- err.Error()
			return
		}
		resp.Body.Close()
		answered <- resp.Status
	}()
	go func() { // one byte every 100ms: never idle, never done
		for {
			if _, err := pw.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	<-exited
	pw.Close()
	t.Logf("slow uploader: exit %d after %s; the uploader saw: %s", code, took.Round(time.Millisecond), <-answered)
	if code != 0 {
		t.Fatalf("exit %d after %s, want 0 within the %s grace period\n%s", code, took, drainGrace, cluster.Tail(s.proc.Log, 30))
	}
}
