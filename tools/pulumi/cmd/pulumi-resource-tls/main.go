// Command pulumi-resource-tls is the test-only stand-in for the pulumi-tls
// provider plugin (see package tlsprovider). Only the local cluster and the
// end-to-end tests put it on PATH; a normal `pulumi up` uses the real plugin.
package main

import (
	"fmt"
	"os"

	"github.com/ai-webhook/ai-webhook/tools/pulumi/tlsprovider"
)

func main() {
	if err := tlsprovider.Serve(); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-tls: %v\n", err)
		os.Exit(1)
	}
}
