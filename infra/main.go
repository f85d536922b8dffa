// Command infra is the Pulumi program of ai-webhook (Pulumi.yaml: main: infra/). Everything lives
// in package webhookstack so the Automation API can run the very same Program.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ai-webhook/ai-webhook/infra/webhookstack"
)

func main() {
	pulumi.Run(webhookstack.Program)
}
