package profile

import (
	"strings"
	"testing"
)

// Every key the webhook reads or writes comes from its domain, and a profile may set none of
// them: the reserved keys are KeysFor's, not a second list.
func TestEveryKeyDerivesFromTheDomainAndIsReserved(t *testing.T) {
	const domain = "gpu.corp.example"
	keys := KeysFor(domain)
	if want := (Keys{Profile: domain + "/profile", Inject: domain + "/inject", Injected: domain + "/injected"}); keys != want {
		t.Fatalf("KeysFor(%q) = %+v, want %+v", domain, keys, want)
	}
	for _, k := range []string{keys.Profile, keys.Inject, keys.Injected} {
		for _, where := range []string{"labels", "annotations"} {
			_, err := Parse([]byte("profiles:\n- name: p\n  pod: {"+where+": {"+k+": x}}\n"), domain)
			if err == nil || !strings.Contains(err.Error(), "reserved for the webhook itself") {
				t.Errorf("%s %s accepted: %v", where, k, err)
			}
		}
	}
}

// The Pod's opt-in and opt-out words never overlap, and are lower case: the namespace
// selector derives its case spellings from them.
func TestOptInAndOptOutValuesAreDistinctLowerCaseWords(t *testing.T) {
	for _, w := range append(append([]string{}, OptOutValues...), OptInValues...) {
		if w != strings.ToLower(strings.TrimSpace(w)) || w == "" {
			t.Errorf("%q is not a trimmed lower-case word", w)
		}
	}
	for _, w := range OptOutValues {
		for _, v := range OptInValues {
			if w == v {
				t.Errorf("%q both opts in and out", w)
			}
		}
	}
}
