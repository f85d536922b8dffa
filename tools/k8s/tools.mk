# tools/k8s/tools.mk: the Kubernetes control-plane binaries, built from Go
# modules (nothing is downloaded but modules from the Go module proxy).
#
# Included by the top-level Makefile, which defines ROOT and BIN. Each binary
# is a file target: when it exists in $(BIN), nothing happens. To rebuild after
# changing a version in tools/k8s/go.mod or tools/k8s/etcd/go.mod, delete the
# binary (or run `make k8s-tools-clean`).
#
# The tools modules are not in go.work and are always built with GOWORK=off:
# their replace directives only apply when they are the main module. Heavy
# builds take the shared build lock so that only one runs at a time.

ROOT ?= $(abspath .)
BIN ?= $(ROOT)/bin

K8S_TOOLS_DIR := $(ROOT)/tools/k8s
K8S_ETCD_DIR := $(K8S_TOOLS_DIR)/etcd
K8S_VERSION := v1.37.2
K8S_VERSION_MAJOR := 1
K8S_VERSION_MINOR := 37
BUILD_LOCK ?= /tmp/ai-webhook-build.lock

K8S_TOOLS := $(addprefix $(BIN)/,kube-apiserver kube-controller-manager kubectl etcd kwok)

# Without these the binaries report v0.0.0-master (see hack/lib/version.sh in
# kubernetes): both the server version and the client-go version are stamped.
K8S_VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version
K8S_LDFLAGS := -s -w $(foreach p,$(K8S_VERSION_PKGS),\
	-X $(p).gitVersion=$(K8S_VERSION) \
	-X $(p).gitMajor=$(K8S_VERSION_MAJOR) \
	-X $(p).gitMinor=$(K8S_VERSION_MINOR) \
	-X $(p).gitTreeState=clean)

# k8s_build: $(1) = module directory, $(2) = package, $(3) = ldflags.
k8s_build = mkdir -p $(BIN) && cd $(1) && GOWORK=off flock $(BUILD_LOCK) go build -ldflags '$(3)' -o $(abspath $@) $(2)

.PHONY: k8s-tools k8s-tools-clean
k8s-tools: $(K8S_TOOLS) ## Build kube-apiserver, kube-controller-manager, kubectl, etcd and kwok into bin/

$(BIN)/kube-apiserver:
	$(call k8s_build,$(K8S_TOOLS_DIR),k8s.io/kubernetes/cmd/kube-apiserver,$(K8S_LDFLAGS))

$(BIN)/kube-controller-manager:
	$(call k8s_build,$(K8S_TOOLS_DIR),k8s.io/kubernetes/cmd/kube-controller-manager,$(K8S_LDFLAGS))

$(BIN)/kubectl:
	$(call k8s_build,$(K8S_TOOLS_DIR),k8s.io/kubernetes/cmd/kubectl,$(K8S_LDFLAGS))

$(BIN)/kwok:
	$(call k8s_build,$(K8S_TOOLS_DIR),sigs.k8s.io/kwok/cmd/kwok,-s -w)

# etcd has its own module (tools/k8s/etcd): in the kubernetes module graph
# minimal version selection would raise it to v3.7.x.
$(BIN)/etcd:
	$(call k8s_build,$(K8S_ETCD_DIR),go.etcd.io/etcd/server/v3,-s -w)

k8s-tools-clean: ## Delete the binaries built by k8s-tools
	rm -f $(K8S_TOOLS)
