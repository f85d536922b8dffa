package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseArgsAcceptsFlagsAroundTheCommand(t *testing.T) {
	o, err := parseArgs([]string{"--stack", "prod", "up", "--json", "--replace", "urn:a", "--replace", "urn:b", "--config", "namespaceSelector.mode=optOut"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.command != "up" || o.stack != "prod" || !o.jsonOut ||
		!slices.Equal(o.replace, []string{"urn:a", "urn:b"}) || !slices.Equal(o.config, []string{"namespaceSelector.mode=optOut"}) {
		t.Fatalf("parsed %+v", o)
	}
}

func TestParseArgsDefaultsToTheDevStack(t *testing.T) {
	o, err := parseArgs([]string{"preview"}, io.Discard)
	if err != nil || o.stack != "dev" {
		t.Fatalf("stack %q, err %v", o.stack, err)
	}
}

func TestParseArgsRejectsAMissingOrUnknownCommandAndStrayArguments(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"no command", []string{}},
		{"unknown command", []string{"apply"}},
		{"extra argument", []string{"up", "now"}},
		{"config without =", []string{"up", "--config", "replicas"}},
	} {
		if _, err := parseArgs(tt.args, io.Discard); err == nil {
			t.Errorf("%s: %q accepted", tt.name, tt.args)
		}
	}
}

func TestFindWorkDirWalksUpToPulumiYAML(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "Pulumi.yaml"), []byte("name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	got, err := findWorkDir("")
	if err != nil || got != root {
		t.Fatalf("findWorkDir = %q, %v; want %q", got, err, root)
	}
	if _, err := findWorkDir(sub); err == nil || !strings.Contains(err.Error(), "no Pulumi.yaml") {
		t.Fatalf("--cwd without Pulumi.yaml: %v", err)
	}
}

func TestPrintOutputsIndentsMultiLineValues(t *testing.T) {
	var b bytes.Buffer
	printOutputs(&b, map[string]any{"mutating_webhook_name": "ai-mutating-webhook", "ca_cert_pem": "-----BEGIN-----\nabc\n-----END-----\n"})
	want := "Outputs:\n  ca_cert_pem: |\n    -----BEGIN-----\n    abc\n    -----END-----\n  mutating_webhook_name: ai-mutating-webhook\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// fakePulumi puts a pulumi CLI first on PATH that answers what the Automation API asks before an
// operation (its version, selecting the stack, setting config) and fails every operation at
// once, before it could connect to the event stream.
func fakePulumi(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
[ "$1" = --non-interactive ] && shift
case "$1" in
version) echo v3.274.1 ;;
stack|config) ;;
*) echo "error: $1 failed before the engine started" >&2; exit 255 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "pulumi"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// The Automation API closes the event channel only once the CLI has connected to it; an
// operation failing before that must still end the command with the CLI's error printed.
func TestOperationFailingBeforeTheCLIConnectsPrintsItsError(t *testing.T) {
	fakePulumi(t)
	project := t.TempDir()
	if err := os.WriteFile(filepath.Join(project, "Pulumi.yaml"), []byte("name: ai-webhook\nruntime: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ command, want string }{
		{"up", "deploy up: failed to run update: exit status 255"},
		{"preview", "deploy preview: failed to run preview: exit status 255"},
		{"refresh", "deploy refresh: failed to refresh stack: exit status 255"},
		{"destroy", "deploy destroy: failed to destroy stack: exit status 255"},
	} {
		t.Run(tt.command, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := make(chan int, 1)
			go func() { code <- deploy(t.Context(), []string{"--cwd", project, tt.command}, &stdout, &stderr) }()
			select {
			case c := <-code:
				if c != 1 {
					t.Errorf("exit code %d, want 1", c)
				}
			case <-time.After(time.Minute): // a hang, not a speed limit: the fake CLI exits at once
				t.Fatal("deploy did not return after the operation failed")
			}
			for _, want := range []string{tt.command + " failed before the engine started", tt.want} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
				}
			}
			if strings.Count(stderr.String(), "failed before the engine started") != 1 {
				t.Errorf("the CLI's error is printed more than once:\n%s", stderr.String())
			}
		})
	}
}

// A --config value is set whole but shown by its key, size and digest: profiles are a whole
// YAML document, and a value may be a secret.
func TestConfigValueIsShownByKeySizeAndDigest(t *testing.T) {
	fakePulumi(t)
	project := t.TempDir()
	if err := os.WriteFile(filepath.Join(project, "Pulumi.yaml"), []byte("name: ai-webhook\nruntime: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	profiles := "profiles:\n- name: pytorch-training\n  env: {NCCL_DEBUG: WARN}\n"
	for _, jsonOut := range []bool{false, true} {
		args := []string{"--cwd", project, "preview", "--config", "profiles=" + profiles}
		if jsonOut {
			args = append(args, "--json")
		}
		var stdout, stderr bytes.Buffer
		if code := deploy(t.Context(), args, &stdout, &stderr); code != 1 {
			t.Fatalf("exit code %d, want 1 (the fake CLI fails the preview)", code)
		}
		out := stdout.String() + stderr.String()
		sum := sha256.Sum256([]byte(profiles))
		want := fmt.Sprintf("config set profiles (%d bytes, sha256 %x)", len(profiles), sum[:6])
		if !strings.Contains(out, want) {
			t.Errorf("json %v: output does not say %q:\n%s", jsonOut, want, out)
		}
		if strings.Contains(out, "NCCL_DEBUG") {
			t.Errorf("json %v: output shows the value:\n%s", jsonOut, out)
		}
		if jsonOut && strings.Contains(stdout.String(), "config set") {
			t.Errorf("--json: the config line is on stdout, which holds only the summary:\n%s", stdout.String())
		}
	}
}
