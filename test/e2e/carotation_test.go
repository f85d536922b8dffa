package e2e

import (
	"bytes"
	"context"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The CA's key: replacing it replaces the CA, the serving certificate and its Secret.
const caKeyURN = "urn:pulumi:" + stackName + "::ai-webhook::ai-webhook:index:WebhookStack$" +
	"tls:index/privateKey:PrivateKey::ai-webhook-ca"

// TestCAReplacementRefusesNoPod: with failurePolicy Fail and two replicas, Pods are created back
// to back while `pulumi up --replace` gives the stack a new CA (new key, new CA certificate, new
// serving certificate, the Deployment rolled), and while the next `pulumi up` drops the old CA.
// caBundle must trust the old and the new CA while old and new Pods serve side by side: zero
// refused creates, every Pod mutated. The stack is first installed and destroyed, as an earlier
// test leaves it: each update after that must still read the last one's outputs (no fallback to
// first-install ordering).
func TestCAReplacementRefusesNoPod(t *testing.T) {
	kube := env.cluster.Client
	t.Cleanup(func() {
		// The dev stack's settings again, for whatever runs next in this cluster (also when
		// the first up fails half way).
		deploy(t, "destroy", "--config", "failurePolicy=Ignore")
	})
	readLastOutputs(t, deploy(t, "up", "--config", "failurePolicy=Fail"))
	deploy(t, "destroy")
	first := deploy(t, "up")
	readLastOutputs(t, first)
	before := currentStack(t, kube)
	oldCA, _ := first.Outputs["ca_cert_pem"].(string)
	if oldCA == "" || oldCA != string(before.secret.Data["ca.crt"]) {
		t.Fatalf("output ca_cert_pem %q is not the Secret's CA", oldCA)
	}
	if got := bundleOf(t, kube); len(got) != 1 || !bytes.Equal(got[0], certsOf(t, oldCA)[0]) {
		t.Fatalf("after the install caBundle holds %d certificates, want the CA alone", len(got))
	}

	load, steady := steadyLoad(t, kube, "e2e-carotation")

	replacing := &phaseCounts{name: "up --replace the CA (Pods roll)"}
	load.next(replacing)
	oldPods := webhookPods(t, kube)
	s := deploy(t, "up", "--replace", caKeyURN)
	readLastOutputs(t, s)
	for _, step := range []string{"update " + mwcType, "update kubernetes:apps/v1:Deployment"} {
		if !slices.Contains(stepsOf(s), step) {
			t.Errorf("steps %v lack %q", stepsOf(s), step)
		}
	}
	waitReplaced(t, kube, oldPods)
	after := currentStack(t, kube)
	newCA, _ := s.Outputs["ca_cert_pem"].(string)
	if newCA == oldCA || newCA != string(after.secret.Data["ca.crt"]) {
		t.Fatal("the CA was not replaced, or output ca_cert_pem is not the new Secret's CA")
	}
	// Until the next up, the configuration trusts both: an old Pod could still be serving.
	if got := bundleOf(t, kube); len(got) != 2 || !bytes.Equal(got[0], certsOf(t, newCA)[0]) || !bytes.Equal(got[1], certsOf(t, oldCA)[0]) {
		t.Errorf("during the CA change caBundle holds %d certificates, want the new CA and the old one", len(got))
	}
	checkServedCertificates(t, kube, after)

	dropping := &phaseCounts{name: "next up drops the old CA"}
	load.next(dropping)
	s = deploy(t, "up")
	readLastOutputs(t, s)
	if got := stepsOf(s); !slices.Equal(got, []string{"update " + mwcType}) {
		t.Errorf("steps %v, want only the webhook configuration updated", got)
	}
	if got := bundleOf(t, kube); len(got) != 1 || !bytes.Equal(got[0], certsOf(t, newCA)[0]) {
		t.Errorf("after the next up caBundle holds %d certificates, want the new CA alone", len(got))
	}

	load.settle(t, steady, replacing, dropping)
}

// readLastOutputs fails unless the update read the stack's last outputs: a fallback to a first
// install (certs_trust.go readPrevious) would put the new CA alone in caBundle and update the
// webhook configuration only after the Deployment, the window in which Pods are refused.
func readLastOutputs(t *testing.T, s summary) {
	t.Helper()
	for _, sign := range []string{"unknown resource", "deploying as a first install"} {
		if strings.Contains(s.log, sign) {
			t.Errorf("the update could not read the last outputs (%q):\n%s", sign, lastLines(s.log, 20))
			return
		}
	}
}

// bundleOf returns the DER of each certificate in the webhook configuration's caBundle.
func bundleOf(t *testing.T, kube kubernetes.Interface) [][]byte {
	t.Helper()
	mwc, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), webhookConfig, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return certsOf(t, string(mwc.Webhooks[0].ClientConfig.CABundle))
}

// certsOf returns the DER of each certificate of a PEM text.
func certsOf(t *testing.T, text string) [][]byte {
	t.Helper()
	var out [][]byte
	rest := []byte(text)
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		out = append(out, block.Bytes)
	}
	if len(out) == 0 {
		t.Fatalf("no certificate in %q", text)
	}
	return out
}
