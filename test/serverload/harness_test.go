package serverload

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/test/internal/repo"
	reviews "github.com/ai-webhook/ai-webhook/test/internal/review"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
	"github.com/ai-webhook/ai-webhook/webhook/testpki"
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
	if binary, err = repo.Build(root, dir, repo.Webhook); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// server is one running webhook process.
type server struct {
	t    *testing.T
	proc *cluster.Process
	addr string
	tls  *tls.Config // trusts the server's certificate
	cg   *cgroup
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
	cert, key, err := ca.ServingFiles(dir, serviceName, serviceName)
	if err != nil {
		t.Fatal(err)
	}
	profiles := filepath.Join(dir, "profiles.yaml")
	if err := os.WriteFile(profiles, profile.Examples, 0o600); err != nil {
		t.Fatal(err)
	}
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", ports[0])
	argv := append([]string{binary, "serve", "--listen=" + addr, "--tls-cert-file=" + cert, "--tls-key-file=" + key,
		"--profiles-file=" + profiles, "--log-level=warn"}, args...)
	if cg != nil {
		// The shell joins the cgroup, then becomes the server: every byte it uses is charged.
		argv = append([]string{"/bin/sh", "-c", `echo $$ > "$0" && exec "$@"`, cg.procsFile()}, argv...)
	}
	proc, err := cluster.StartProcess(cluster.Command{Name: "ai-webhook", Argv: argv, Env: env, Log: filepath.Join(dir, "server.log")})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, proc: proc, addr: addr, cg: cg, tls: &tls.Config{RootCAs: ca.Pool, ServerName: serviceName}}
	t.Cleanup(func() { proc.Stop(0) })
	client := s.client()
	ready := func(ctx context.Context) error { return cluster.GetOK(ctx, client, "https://"+addr+"/readyz") }
	if err := cluster.Wait(context.Background(), 20*time.Second, ready, proc); err != nil {
		t.Fatalf("server not ready: %v\n%s", err, cluster.Tail(proc.Log, 30))
	}
	return s
}

// client is a fresh keep-alive client, as the API server's.
func (s *server) client() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: s.tls.Clone(),
		MaxIdleConnsPerHost: 25, IdleConnTimeout: 90 * time.Second}}
}

func (s *server) url() string { return "https://" + s.addr + "/mutate?timeout=10s" }

// alive reports whether the process is still running.
func (s *server) alive() bool { return s.proc.Failure() == nil }

// sigterm stops the server as the kubelet does (SIGKILL at the end of the grace period) and
// returns its exit code (-1 if killed) and how long it took.
func (s *server) sigterm(within time.Duration) (int, time.Duration) {
	s.t.Helper()
	start := time.Now()
	exit := s.proc.Stop(within)
	return exit.ExitCode(), time.Since(start)
}

// rss is the process's resident set now and its high-water mark (VmRSS, VmHWM), in
// bytes; -1 when they cannot be read.
func (s *server) rss() (now, peak int64) {
	if p, err := procfs.NewProc(s.proc.PID()); err == nil {
		if st, err := p.NewStatus(); err == nil {
			return int64(st.VmRSS), int64(st.VmHWM)
		}
	}
	return -1, -1
}

// review is an AdmissionReview of pod, in namespace ml, with the given UID.
func review(t testing.TB, uid string, pod *corev1.Pod) []byte {
	inML := *pod
	inML.Namespace = "ml"
	b, err := reviews.Body(&inML, uid)
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
	if resp.StatusCode != 200 {
		return resp.Close, fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	if _, r, err := reviews.Allowed(body, b); err != nil || r.Patch == nil {
		return resp.Close, fmt.Errorf("no patch (%v): %.200s", err, b)
	}
	return resp.Close, nil
}
