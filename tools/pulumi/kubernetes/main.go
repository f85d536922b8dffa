// Command pulumi-resource-kubernetes is the Pulumi Kubernetes provider plugin,
// built from the published provider module.
//
// The upstream command embeds schema-embed.json, a file generated at release
// time that the module does not contain. This main embeds the same two files,
// produced from the module's schema.json and terraform-mapping.json by
// genschema.go (run by tools/pulumi/tools.mk before the build; the outputs are
// git-ignored), and otherwise does exactly what upstream's main does.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
