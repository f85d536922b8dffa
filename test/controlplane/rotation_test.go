package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

// Case 9: the serving certificate is rotated on disk (as the kubelet updates
// a Secret volume) while Pods are being created: no admission fails, every
// Pod is mutated, and the webhook serves the new certificate, to new
// connections of the API server too.
func TestServingCertRotationDropsNoAdmission(t *testing.T) {
	requireControlPlane(t)
	ns := optedInNamespace(t)
	installStackWebhook(t, ns)
	addr := net.JoinHostPort(webhookAddress, strconv.Itoa(webhookPort))
	old, err := servedSerial(addr, webhookServerName(), fx.ca)
	if err != nil {
		t.Fatalf("dial the webhook: %v", err)
	}

	ctx, stop := context.WithCancel(context.Background())
	var (
		created, failed, unmutated atomic.Int64
		mu                         sync.Mutex
		firstErrs                  []string
		wg                         sync.WaitGroup
	)
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				p, err := createPod(ns, trainingPod(fmt.Sprintf("rot-%d-%d", w, i), optInLabel(gpuProfile)), false)
				switch {
				case err != nil:
					failed.Add(1)
					mu.Lock()
					if len(firstErrs) < 5 {
						firstErrs = append(firstErrs, err.Error())
					}
					mu.Unlock()
				case p.Annotations[injectedKey] == "":
					unmutated.Add(1)
				default:
					created.Add(1)
				}
			}
		})
	}

	time.Sleep(time.Second) // Pods flow with the old certificate
	rotated, err := fx.rotateServingCert()
	if err != nil {
		stop()
		wg.Wait()
		t.Fatalf("rotate: %v", err)
	}
	rotatedAt := time.Now()
	countAtRotation := created.Load()
	cluster.Eventually(t, 30*time.Second, "the webhook to serve the new certificate", func() error {
		got, err := servedSerial(addr, webhookServerName(), fx.ca)
		if err != nil {
			return err
		}
		if got.Cmp(rotated.Serial) != 0 {
			return fmt.Errorf("serves serial %x, want the new %x (old %x)", got, rotated.Serial, old)
		}
		return nil
	})
	t.Logf("new certificate served %v after the files were swapped", time.Since(rotatedAt).Round(time.Millisecond))

	// The API server keeps its connections to the webhook alive, so its calls
	// may still ride on handshakes made with the old certificate. A caBundle
	// that differs by a byte gives it a new client (its cache is keyed by the
	// client config), so the next calls handshake with the new certificate.
	countAtServed := created.Load()
	installWebhook(t, stackWebhook(withCABundle(append(bytes.Clone(fx.ca.CertPEM), '\n'))))
	time.Sleep(3 * time.Second)
	stop()
	wg.Wait()

	t.Logf("created %d Pods (%d before the swap, %d more until the new certificate was served, %d after), %d failed, %d unmutated",
		created.Load(), countAtRotation, countAtServed-countAtRotation, created.Load()-countAtServed, failed.Load(), unmutated.Load())
	if failed.Load() != 0 {
		t.Errorf("%d admissions failed during the rotation, want 0; first errors: %q", failed.Load(), firstErrs)
	}
	if unmutated.Load() != 0 {
		t.Errorf("%d Pods admitted without the profile during the rotation, want 0", unmutated.Load())
	}
	if created.Load()-countAtServed == 0 {
		t.Error("no Pod was created after the new certificate was served")
	}
}
