// Package e2e proves that `pulumi up` of the ai-webhook stack works for real:
// the deploy command (infra/cmd/deploy, the Automation API running
// webhookstack.Program) with the Pulumi engine, the Kubernetes provider and
// the pulumi-tls provider (the test-only stand-in, or the real plugin with
// AI_WEBHOOK_E2E_TLS_PROVIDER=real) against the cluster `make up` runs
// (package tools/localcluster/cluster) on which the real webhook binary serves the
// Deployment's Pods. It also walks README's loop on the local stack (`make
// pulumi ARGS=...`: config set, preview, up, stack output) as printed there.
//
// The binaries come from `make tools`; without them the test fails and says
// so. It runs in private network and PID namespaces (root, or unprivileged
// user namespaces).
package e2e
