package profile_test

import (
	"strings"
	"testing"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// The keys a profile may not set are exactly the keys the injector reads and writes.
func TestReservedKeysAreTheInjectorsKeys(t *testing.T) {
	const domain = "gpu.corp.example"
	keys := inject.KeysFor(domain)
	for _, k := range []string{keys.Profile, keys.Inject, keys.Injected} {
		_, err := profile.Parse([]byte("profiles:\n- name: p\n  pod: {annotations: {"+k+": x}}\n"), domain)
		if err == nil || !strings.Contains(err.Error(), "reserved for the webhook itself") {
			t.Errorf("%s accepted: %v", k, err)
		}
	}
}
