//go:build ignore

// genschema writes schema-embed.json and terraform-mapping-embed.json, the two
// files main.go embeds, from the provider module's cmd/pulumi-resource-kubernetes
// directory: the schema with its "version" set (the SDK asks the engine for a
// provider of that version), and the Terraform mapping compacted. It is what
// upstream's generate.go does at release time.
//
//	go run genschema.go -src "$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)/cmd/pulumi-resource-kubernetes" -version 4.32.0
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"log"
	"os"
	"path/filepath"
)

func main() {
	src := flag.String("src", "", "directory holding schema.json and terraform-mapping.json")
	version := flag.String("version", "", "provider version to stamp into the schema")
	out := flag.String("out", ".", "output directory")
	flag.Parse()
	if *src == "" || *version == "" {
		log.Fatal("genschema: -src and -version are required")
	}

	raw, err := os.ReadFile(filepath.Join(*src, "schema.json"))
	if err != nil {
		log.Fatal(err)
	}
	// A map of raw messages keeps every other field byte-for-byte.
	var schema map[string]json.RawMessage
	if err := json.Unmarshal(raw, &schema); err != nil {
		log.Fatalf("genschema: schema.json: %v", err)
	}
	v, _ := json.Marshal(*version)
	schema["version"] = v
	schemaOut, err := json.Marshal(schema)
	if err != nil {
		log.Fatal(err)
	}
	write(filepath.Join(*out, "schema-embed.json"), schemaOut)

	mapping, err := os.ReadFile(filepath.Join(*src, "terraform-mapping.json"))
	if err != nil {
		log.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, mapping); err != nil {
		log.Fatalf("genschema: terraform-mapping.json: %v", err)
	}
	write(filepath.Join(*out, "terraform-mapping-embed.json"), compact.Bytes())
}

// write replaces path atomically so an interrupted run never leaves a
// truncated file that a later build would embed.
func write(path string, data []byte) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		log.Fatal(err)
	}
}
