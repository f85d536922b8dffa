package server

import (
	"bytes"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
)

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestMemoryLimitIsNinetyPercentOfTheContainers(t *testing.T) {
	for _, tt := range []struct {
		name       string
		env        map[string]string
		wantLimit  int64
		wantSource string
		wantErr    string
	}{
		{name: "bytes from the downward API", env: map[string]string{EnvMemoryLimit: "268435456"}, wantLimit: 241591905, wantSource: EnvMemoryLimit},
		{name: "a quantity", env: map[string]string{EnvMemoryLimit: "1Gi"}, wantLimit: (1 << 30) / 10 * 9, wantSource: EnvMemoryLimit},
		{name: "GOMEMLIMIT set explicitly wins", env: map[string]string{EnvMemoryLimit: "256Mi", "GOMEMLIMIT": "100MiB"}, wantLimit: debug.SetMemoryLimit(-1), wantSource: "GOMEMLIMIT"},
		{name: "no limit given", env: map[string]string{}, wantSource: "none"},
		{name: "not a quantity", env: map[string]string{EnvMemoryLimit: "lots"}, wantErr: `AI_WEBHOOK_MEMORY_LIMIT "lots": want the container's memory limit`},
		{name: "a divisor other than 1", env: map[string]string{EnvMemoryLimit: "256"}, wantErr: "below 16Mi; is the downward API's divisor other than 1?"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			limit, source, err := MemoryLimit(envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || limit != tt.wantLimit || source != tt.wantSource {
				t.Errorf("MemoryLimit = %d, %q, %v; want %d, %q", limit, source, err, tt.wantLimit, tt.wantSource)
			}
		})
	}
}

// Not parallel: the runtime's memory limit is the process's.
func TestSetMemoryLimitAppliesAndLogsIt(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	var logs bytes.Buffer
	if err := SetMemoryLimit(envOf(map[string]string{EnvMemoryLimit: "512Mi"}), slog.New(slog.NewJSONHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	want := int64(512<<20) / 10 * 9
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Errorf("runtime memory limit %d, want %d", got, want)
	}
	if !strings.Contains(logs.String(), `"msg":"memory limit","bytes":483183819,"source":"AI_WEBHOOK_MEMORY_LIMIT"`) {
		t.Errorf("log: %s", logs.String())
	}
	if err := SetMemoryLimit(envOf(map[string]string{EnvMemoryLimit: "x"}), slog.New(slog.NewJSONHandler(&logs, nil))); err == nil {
		t.Error("a bad value was accepted")
	}
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Errorf("a refused value changed the limit to %d", got)
	}
}
