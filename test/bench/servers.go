package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ai-webhook/ai-webhook/test/internal/review"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

// Server is a webhook server under test, in its own process, and the reviews to send it.
type Server struct {
	Name      string
	Proc      *cluster.Process
	Addr      string // 127.0.0.1:port
	URL       string // of /mutate
	Client    *http.Client
	Bodies    [][]byte // reviews of the typical Pod, sent in turn
	AllowOnly bool     // answers allowed without a patch (the no-op server)
	next      atomic.Uint64
}

// Kind of server: how to pass it the fixture.
const (
	Ours      = "ai-webhook"
	Reference = "reference"
	Noop      = "no-op" // calibration: TLS and HTTP only (NoopMain)
	// NoopPatch is the no-op server answering with ai-webhook's patch for the typical Pod,
	// computed once: what the API server pays to apply that patch, without computing it.
	NoopPatch = "no-op with ai-webhook's patch"
)

// StartServer starts the server kind (Ours, Reference, Noop or NoopPatch) as program
// argv0 with env added to its environment, and waits until it answers a review correctly.
func StartServer(ctx context.Context, fx *Fixture, kind, argv0 string, env []string) (*Server, error) {
	ports, err := cluster.FreePorts(1)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", ports[0])
	var args []string
	switch kind {
	case Ours:
		args = []string{"serve", "--listen=" + addr,
			"--tls-cert-file=" + filepath.Join(fx.CertDir, "tls.crt"), "--tls-key-file=" + filepath.Join(fx.CertDir, "tls.key"),
			"--profiles-file=" + fx.ProfilesFile, "--domain=" + Domain, "--log-level=info", "--shutdown-delay=0s"}
	case Reference:
		args = []string{"--listen=" + addr, "--cert-dir=" + fx.CertDir, "--profiles-file=" + fx.ProfilesFile, "--domain=" + Domain}
	case Noop:
		args = []string{"--listen=" + addr, "--cert-dir=" + fx.CertDir}
	case NoopPatch:
		patch, err := fx.patch()
		if err != nil {
			return nil, err
		}
		args = []string{"--listen=" + addr, "--cert-dir=" + fx.CertDir, "--patch=" + base64.StdEncoding.EncodeToString(patch)}
	default:
		return nil, fmt.Errorf("unknown server kind %q", kind)
	}
	proc, err := cluster.StartProcess(cluster.Command{Name: kind, Argv: append([]string{argv0}, args...), Env: env,
		Log: filepath.Join(fx.Dir, strings.ReplaceAll(kind, " ", "-")+".log")})
	if err != nil {
		return nil, err
	}
	s := &Server{Name: kind, Proc: proc, Addr: addr, URL: "https://" + addr + "/mutate?timeout=10s", Bodies: fx.Bodies, AllowOnly: kind == Noop,
		// As the API server's webhook client: HTTP/1.1 only, kept-alive connections with up to 25
		// idle per host, and the webhook's default 10 s timeout.
		Client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: fx.CA.Pool, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/2 off
			MaxIdleConnsPerHost: 25, MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second, DisableCompression: true,
		}}}
	if err := s.waitReady(ctx, fx); err != nil {
		proc.Stop(time.Second)
		return nil, err
	}
	return s, nil
}

// waitReady polls with a real review until the answer is right (checkAnswer).
func (s *Server) waitReady(ctx context.Context, fx *Fixture) error {
	err := cluster.Wait(ctx, 20*time.Second, func(ctx context.Context) error {
		return s.do(ctx, http.MethodPost, s.URL, fx.Bodies[0], func(resp []byte) error {
			_, err := checkAnswer(s.AllowOnly, fx.Bodies[0], resp)
			return err
		})
	}, s.Proc)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	return nil
}

// checkAnswer verifies an answer to body fully: allowed and, unless allowOnly, patched as
// ai-webhook patches (review.Patched); it returns the patched Pod.
func checkAnswer(allowOnly bool, body, resp []byte) (*corev1.Pod, error) {
	if allowOnly {
		_, _, err := review.Allowed(body, resp)
		return nil, err
	}
	return review.Patched(body, resp)
}

// Do sends the next review and checks the answer cheaply (allowed, with a patch unless
// AllowOnly): the full check (review.Patched) was done once, before measuring.
func (s *Server) Do(ctx context.Context) error {
	return s.do(ctx, http.MethodPost, s.URL, s.Bodies[s.next.Add(1)%uint64(len(s.Bodies))], func(b []byte) error {
		if !bytes.Contains(b, []byte(`"allowed":true`)) || (!s.AllowOnly && !bytes.Contains(b, []byte(`"patch":"`))) {
			return fmt.Errorf("response is not an allowed, patched review: %.200s", b)
		}
		return nil
	})
}

// Count is how many reviews a no-op server answered (GET /count).
func (s *Server) Count(ctx context.Context) (n int64, err error) {
	err = s.do(ctx, http.MethodGet, "https://"+s.Addr+"/count", nil, func(b []byte) error {
		n, err = strconv.ParseInt(string(b), 10, 64)
		return err
	})
	return n, err
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// do sends a request and hands the body of a 200 answer to check (valid during the call:
// the buffer is pooled, so the load generator allocates little).
func (s *Server) do(ctx context.Context, method, url string, body []byte, check func([]byte) error) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return err
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	_, err = io.Copy(buf, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s %s: HTTP %d: %.300s", method, url, resp.StatusCode, buf.Bytes())
	}
	return check(buf.Bytes())
}

// Stop ends the server.
func (s *Server) Stop() {
	s.Client.CloseIdleConnections()
	s.Proc.Stop(5 * time.Second)
}
