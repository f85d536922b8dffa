package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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

func TestParseArgsRejects(t *testing.T) {
	for name, args := range map[string][]string{
		"no command":       {},
		"unknown command":  {"apply"},
		"extra argument":   {"up", "now"},
		"config without =": {"up", "--config", "replicas"},
	} {
		if _, err := parseArgs(args, io.Discard); err == nil {
			t.Errorf("%s: %q accepted", name, args)
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
