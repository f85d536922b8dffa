package bench

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ai-webhook/ai-webhook/test/internal/review"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
	"github.com/ai-webhook/ai-webhook/webhook/testpki"
)

// Domain is the key prefix every server of the benchmark uses.
const Domain = profile.DefaultDomain

// Fixture is what every server of one run shares: certificates, the shipped profiles and
// the typical Pod with its review bodies.
type Fixture struct {
	Dir          string // scratch directory: certificates, profiles, logs
	CA           *testpki.CA
	CertDir      string // tls.crt and tls.key
	ProfilesFile string
	Profiles     *profile.Set
	Example      *corev1.Pod // the user's Pod (TypicalPodFile)
	Typical      *corev1.Pod // as admitted (AdmittedPodFile)
	Bodies       [][]byte    // reviews of Typical, distinct UIDs
}

// NewFixture prepares dir for a run.
func NewFixture(root, dir string) (*Fixture, error) {
	ca, err := testpki.NewCA("ai-webhook-bench-ca", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	fx := &Fixture{Dir: dir, CA: ca, CertDir: filepath.Join(dir, "tls"), ProfilesFile: filepath.Join(dir, "profiles.yaml")}
	if _, _, err := ca.ServingFiles(fx.CertDir, "127.0.0.1", "127.0.0.1", "localhost"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(fx.ProfilesFile, profile.Examples, 0o600); err != nil {
		return nil, err
	}
	if fx.Profiles, err = profile.Parse(profile.Examples, Domain); err != nil {
		return nil, err
	}
	if fx.Example, err = ReadPod(root, TypicalPodFile); err != nil {
		return nil, err
	}
	if fx.Typical, err = ReadPod(root, AdmittedPodFile); err != nil {
		return nil, err
	}
	// Reviews that differ only in their UID, as consecutive API server calls do.
	fx.Bodies = make([][]byte, 64)
	for i := range fx.Bodies {
		if fx.Bodies[i], err = review.Body(fx.Typical, fmt.Sprintf("0b6c4a52-3f7e-4d1a-9c55-%012d", i)); err != nil {
			return nil, err
		}
	}
	return fx, nil
}

// patch is ai-webhook's patch for the typical Pod (from its handler, in-process).
func (fx *Fixture) patch() ([]byte, error) {
	code, resp := Answer(Impls(fx.Profiles)[0].Handler, fx.Bodies[0])
	if code != http.StatusOK {
		return nil, fmt.Errorf("ai-webhook handler: HTTP %d: %s", code, resp)
	}
	_, r, err := review.Allowed(fx.Bodies[0], resp)
	if err != nil || len(r.Patch) == 0 {
		return nil, fmt.Errorf("ai-webhook handler returned no patch (%v): %.300s", err, resp)
	}
	return r.Patch, nil
}
