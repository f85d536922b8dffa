# tools/pulumi/tools.mk: the Pulumi CLI and the provider plugins the stack
# needs, built from Go modules (nothing but modules from the Go module proxy is
# downloaded).
#
#   $(BIN)/pulumi                      github.com/pulumi/pulumi/pkg/v3 (tools/pulumi/go.mod)
#   $(BIN)/pulumi-resource-kubernetes  github.com/pulumi/pulumi-kubernetes/provider/v4
#                                      (tools/pulumi/kubernetes, its own module: its
#                                      dependencies conflict with the CLI's)
#   $(BIN)/pulumi-resource-tls         test-only stand-in for pulumi-tls (tools/pulumi/tlsprovider)
#
# Included by the top-level Makefile, which defines ROOT and BIN. Each binary
# is a file target: when it exists in $(BIN), nothing happens (the tls
# stand-in is rebuilt when its sources change). To rebuild after changing a
# version, delete the binary or run `make pulumi-tools-clean`.
#
# The modules are not in go.work and are always built with GOWORK=off: their
# replace directives apply only when they are the main module. Heavy builds
# take the shared build lock so that only one runs at a time.

ROOT ?= $(abspath .)
BIN ?= $(ROOT)/bin
BUILD_LOCK ?= /tmp/ai-webhook-build.lock

PULUMI_TOOLS_DIR := $(ROOT)/tools/pulumi
PULUMI_K8S_DIR := $(PULUMI_TOOLS_DIR)/kubernetes
# The CLI reports this version (the Automation API refuses a CLI without one).
PULUMI_CLI_VERSION := v3.274.1
# The version the pulumi-kubernetes v4.32.0 SDK asks the engine for.
PULUMI_K8S_PROVIDER_VERSION := 4.32.0
PULUMI_K8S_PROVIDER_MODULE := github.com/pulumi/pulumi-kubernetes/provider/v4

PULUMI_TOOLS := $(BIN)/pulumi $(BIN)/pulumi-resource-kubernetes $(BIN)/pulumi-resource-tls

.PHONY: pulumi-tools pulumi-tools-test pulumi-tools-clean
pulumi-tools: $(PULUMI_TOOLS) ## Build the Pulumi CLI, the Kubernetes provider and the tls stand-in into $(BIN)

$(BIN)/pulumi:
	@mkdir -p $(BIN)
	cd $(PULUMI_TOOLS_DIR) && GOWORK=off flock $(BUILD_LOCK) go build \
		-ldflags '-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$(PULUMI_CLI_VERSION)' \
		-o $(abspath $@) github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

# The provider's own main embeds a schema generated at release time that the
# module lacks; genschema.go makes it from the module's schema.json (files
# git-ignored next to our main.go).
$(BIN)/pulumi-resource-kubernetes:
	@mkdir -p $(BIN)
	cd $(PULUMI_K8S_DIR) && GOWORK=off go mod download $(PULUMI_K8S_PROVIDER_MODULE) && \
		GOWORK=off go run genschema.go -version $(PULUMI_K8S_PROVIDER_VERSION) \
		-src "$$(GOWORK=off go list -m -f '{{.Dir}}' $(PULUMI_K8S_PROVIDER_MODULE))/cmd/pulumi-resource-kubernetes"
	cd $(PULUMI_K8S_DIR) && GOWORK=off flock $(BUILD_LOCK) go build \
		-ldflags '-s -w -X $(PULUMI_K8S_PROVIDER_MODULE)/pkg/version.Version=$(PULUMI_K8S_PROVIDER_VERSION)' \
		-o $(abspath $@) .

$(BIN)/pulumi-resource-tls: $(filter-out %_test.go,$(wildcard $(PULUMI_TOOLS_DIR)/tlsprovider/*.go)) $(PULUMI_TOOLS_DIR)/cmd/pulumi-resource-tls/main.go
	@mkdir -p $(BIN)
	cd $(PULUMI_TOOLS_DIR) && GOWORK=off flock $(BUILD_LOCK) go build -o $(abspath $@) ./cmd/pulumi-resource-tls

pulumi-tools-test: ## Test the tls stand-in (property names checked against the pulumi-tls v5.2.0 SDK)
	cd $(PULUMI_TOOLS_DIR) && GOWORK=off go test ./...

pulumi-tools-clean: ## Delete the binaries built by pulumi-tools
	rm -f $(PULUMI_TOOLS)
