package serverload

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ai-webhook/ai-webhook/test/internal/repo"
	"github.com/ai-webhook/ai-webhook/test/internal/testpki"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

const serviceName = "ai-webhook.ai-webhook.svc"

// binary is the webhook built once for the package (TestMain).
var binary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "serverload-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := repo.Root(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binary = filepath.Join(dir, "ai-webhook")
	cmd := exec.Command("go", "build", "-o", binary, "github.com/ai-webhook/ai-webhook/webhook/cmd/ai-webhook")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the webhook under test: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// server is one running webhook process.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	pool   *tlsPool
	logs   *lockedBuffer
	exited chan struct{}
	err    error // the process's exit, once exited is closed
	cg     *cgroup
}

type tlsPool struct{ cfg *tls.Config }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 8<<20 { // the attacks log one line per refusal; keep the tail bounded
		l.b.Reset()
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs the binary on a free loopback port, inside cg when it is not nil, with env added,
// and waits until /readyz answers 200.
func start(t *testing.T, cg *cgroup, env []string, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	ca, err := testpki.NewCA("serverload", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Serving(serviceName, serviceName)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "profiles.yaml": profile.Examples}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	argv := append([]string{"serve", "--listen=" + addr, "--tls-cert-file=" + filepath.Join(dir, "tls.crt"),
		"--tls-key-file=" + filepath.Join(dir, "tls.key"), "--profiles-file=" + filepath.Join(dir, "profiles.yaml"),
		"--log-level=warn"}, args...)
	var cmd *exec.Cmd
	if cg != nil {
		// The shell joins the cgroup, then becomes the server: every byte it uses is charged.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `echo $$ > "$0" && exec "$@"`, cg.procsFile(), binary}, argv...)...)
	} else {
		cmd = exec.Command(binary, argv...)
	}
	s := &server{t: t, cmd: cmd, addr: addr, logs: &lockedBuffer{}, exited: make(chan struct{}), cg: cg,
		pool: &tlsPool{cfg: &tls.Config{RootCAs: ca.Pool, ServerName: serviceName}}}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
	})
	client := s.client()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("https://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("server exited at start: %v\n%s", s.err, s.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v\n%s", err, s.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client is a fresh keep-alive client, as the API server's.
func (s *server) client() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: s.pool.cfg.Clone(),
		MaxIdleConnsPerHost: 25, IdleConnTimeout: 90 * time.Second}}
}

func (s *server) url() string { return "https://" + s.addr + "/mutate?timeout=10s" }

// alive reports whether the process is still running.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// sigterm stops the server as the kubelet does and returns its exit code and how long it took.
func (s *server) sigterm(within time.Duration) (int, time.Duration) {
	s.t.Helper()
	start := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(within):
		_ = s.cmd.Process.Kill() // the kubelet's SIGKILL at the end of the grace period
		<-s.exited
		return -1, time.Since(start)
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(s.err, &exit) {
		code = exit.ExitCode()
	} else if s.err != nil {
		code = -2
	}
	return code, time.Since(start)
}

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func (s *server) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// review is an AdmissionReview of pod with a fresh UID.
func review(t testing.TB, uid string, pod *corev1.Pod) []byte {
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID(uid), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: "ml", Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// trainingPod is an ordinary Pod asking for the pytorch-training profile.
func trainingPod() *corev1.Pod {
	return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "train-", Labels: map[string]string{"ai.example.com/profile": "pytorch-training"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pytorch", Image: "pytorch"}, {Name: "logs", Image: "fluent-bit"}}}}
}

// admit sends one ordinary review and says what was wrong with the answer, if anything: it
// must be a 200 with a patch for this UID.
func admit(ctx context.Context, client *http.Client, url, uid string, body []byte) (closed bool, problem error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.Close, err
	}
	var out admissionv1.AdmissionReview
	if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil || out.Response == nil || string(out.Response.UID) != uid || out.Response.Patch == nil {
		return resp.Close, fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	return resp.Close, nil
}
