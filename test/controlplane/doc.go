// Package controlplane tests the ai-webhook binary behind a real kube-apiserver
// and etcd, the way a cluster calls it: the MutatingWebhookConfiguration names
// a Service, the API server resolves it through an EndpointSlice
// (--enable-aggregator-routing=true), verifies the serving certificate against
// the caBundle and stores the Pod it patched.
//
// The control-plane binaries come from bin/ (`make tools` builds them from Go
// modules, see tools/k8s). The tests run inside a private network namespace so
// that EndpointSlice addresses (which must not be loopback) are local: TestMain
// re-executes the test binary under `unshare`, brings up lo there and routes
// 10.250.0.0/16 to it. Nothing leaves that namespace.
//
// Run with: go test ./test/controlplane/... (as root, or where unprivileged
// user namespaces are enabled).
package controlplane
