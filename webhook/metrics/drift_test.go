package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPodsOutOfDateIsAbsentUntilKnownThenOneSeriesPerProfile(t *testing.T) {
	m := New()
	var counts map[string]int
	m.PodsOutOfDate(func() map[string]int { return counts })
	if n, err := testutil.GatherAndCount(m.Registry, "ai_webhook_pods_out_of_date"); err != nil || n != 0 {
		t.Fatalf("before the first list: %d series (%v), want none", n, err)
	}
	counts = map[string]int{"training": 3, "notebook": 0}
	want := `
# HELP ai_webhook_pods_out_of_date Pods that today's profiles would change (no stamp although they ask for a profile, or another profile hash), per profile; _other: a profile the file lacks, or one the webhook would refuse.
# TYPE ai_webhook_pods_out_of_date gauge
ai_webhook_pods_out_of_date{profile="notebook"} 0
ai_webhook_pods_out_of_date{profile="training"} 3
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "ai_webhook_pods_out_of_date"); err != nil {
		t.Fatal(err)
	}
}
