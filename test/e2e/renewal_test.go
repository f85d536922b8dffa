package e2e

import (
	"slices"
	"strings"
	"testing"
)

// The renewal warning, as the engine prints it: "inside earlyRenewalHours" (certs_trust.go
// renewalMessage).
const renewalWarning = "inside earlyRenewalHours"

// TestRenewalIsAnnouncedByPreviewAndUp: once the serving certificate the last update issued is
// inside its renewal window, every preview and up says so; outside the window nothing is said,
// nor after the up that renewed it. A certificate of 2 hours renewed in its last hour is outside;
// the default window (the last 5,880 of 8,760 hours) puts the same certificate inside. That
// change of certValidityHours alone makes the up replace the certificate, so the replace checked
// below is the renewal the warning announces, not proof that the window triggers it.
func TestRenewalIsAnnouncedByPreviewAndUp(t *testing.T) {
	t.Cleanup(func() {
		deploy(t, "destroy", "--config", "certValidityHours=8760", "--config", "earlyRenewalHours=5880")
	})
	short := deploy(t, "up", "--config", "certValidityHours=2", "--config", "earlyRenewalHours=1")
	readLastOutputs(t, short)
	if again := deploy(t, "preview"); strings.Contains(again.log, renewalWarning) {
		t.Errorf("a preview with 2 hours left of a certificate renewed in its last hour warned:\n%s", lastLines(again.log, 20))
	}

	window := []string{"--config", "certValidityHours=8760", "--config", "earlyRenewalHours=5880"}
	preview := deploy(t, append([]string{"preview"}, window...)...)
	if !strings.Contains(preview.log, renewalWarning) {
		t.Errorf("a preview inside the renewal window printed no warning:\n%s", lastLines(preview.log, 20))
	}
	up := deploy(t, append([]string{"up"}, window...)...)
	readLastOutputs(t, up)
	if !strings.Contains(up.log, renewalWarning) {
		t.Errorf("an up inside the renewal window printed no warning:\n%s", lastLines(up.log, 20))
	}
	if !slices.ContainsFunc(stepsOf(up), func(st string) bool {
		return strings.HasSuffix(st, " "+servingCertType) && strings.Contains(st, "replace")
	}) {
		t.Errorf("steps %v: the up inside the window did not replace the serving certificate", stepsOf(up))
	}
	if after := deploy(t, "preview"); strings.Contains(after.log, renewalWarning) {
		t.Errorf("the preview after the renewing up still warned:\n%s", lastLines(after.log, 20))
	}
}
