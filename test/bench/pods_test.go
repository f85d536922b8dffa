package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/test/internal/repo"
	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

var update = flag.Bool("update", false, "rewrite "+AdmittedPodFile+" with what the API server sends")

// The Pod B1-B3 time is the shipped example exactly as the real kube-apiserver hands it to a
// mutating webhook on CREATE: created through the API server with a webhook registered that
// keeps what it is sent, it must equal AdmittedPodFile but for the token volume's random
// suffix and the managed fields' time. Both are compared as plain JSON, so a field newer than
// our k8s.io/api types still counts. After a Kubernetes upgrade changes it, -update rewrites
// the file (and the benchmark figures move with it). The field manager is the test's choice,
// a training operator's, as in review.Body.
func TestTheTypicalPodIsWhatTheAPIServerSendsAWebhook(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a control plane (bin/etcd, bin/kube-apiserver)")
	}
	root, err := repo.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{BinDir: filepath.Join(root, "bin"), StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("%v (run `make tools` at the repository root)", err)
	}
	defer c.Stop()

	var mu sync.Mutex
	var sent []byte
	// httptest's certificate (for 127.0.0.1) is its own CA: the caBundle below.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		mu.Lock()
		sent = review.Request.Object.Raw
		mu.Unlock()
		review.Response, review.Request = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}, nil
		_ = json.NewEncoder(w).Encode(&review)
	}))
	defer srv.Close()

	example, err := ReadPod(root, TypicalPodFile)
	if err != nil {
		t.Fatal(err)
	}
	ns := example.Namespace
	kube := c.Client
	if err := createNamespace(ctx, kube, ns); err != nil {
		t.Fatal(err)
	}
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx,
		webhookConfig("capture", srv.URL+"/mutate", caBundle, ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "the API server calls the capturing webhook", func() error {
		_, err := kube.CoreV1().Pods(ns).Create(ctx, example, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "training-operator"})
		if err == nil {
			mu.Lock()
			defer mu.Unlock()
			if sent == nil {
				return errors.New("not called yet")
			}
		}
		return err
	})

	file := filepath.Join(root, AdmittedPodFile)
	if *update {
		var out bytes.Buffer
		if err := json.Indent(&out, sent, "", "  "); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, append(out.Bytes(), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalised(t, want), normalised(t, sent)); diff != "" {
		t.Errorf("the API server sends the webhook another Pod than %s (-file +sent; go test ./test/bench/ -run %s -args -update rewrites it):\n%s",
			AdmittedPodFile, t.Name(), diff)
	}
}

var tokenVolume = regexp.MustCompile(`kube-api-access-[a-z0-9]+`)

// normalised is a Pod's JSON, indented with sorted keys, without what differs on every create.
func normalised(t *testing.T, raw []byte) string {
	t.Helper()
	var pod map[string]any
	if err := json.Unmarshal(raw, &pod); err != nil {
		t.Fatal(err)
	}
	if meta, ok := pod["metadata"].(map[string]any); ok {
		if fields, ok := meta["managedFields"].([]any); ok {
			for _, f := range fields {
				if f, ok := f.(map[string]any); ok {
					delete(f, "time")
				}
			}
		}
	}
	out, err := json.MarshalIndent(pod, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return tokenVolume.ReplaceAllString(string(out), "kube-api-access-*")
}
