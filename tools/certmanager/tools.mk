# tools/certmanager/tools.mk: cert-manager's CA injector and CRDs, from the
# github.com/cert-manager/cert-manager module (tools/certmanager/go.mod; nothing
# but modules from the Go module proxy is downloaded).
#
#   $(BIN)/cainjector          cert-manager's CA injector reconcilers (the module's
#                              pkg/controller/cainjector) behind our own main
#                              (tools/certmanager/cainjector); test/controlplane runs it
#   $(BIN)/cert-manager-controller
#                              cert-manager's issuance and renewal loops for Issuers and
#                              Certificates with the SelfSigned and CA issuers (the
#                              module's pkg/controller/...) behind our own main
#                              (tools/certmanager/controller); test/controlplane runs it
#   $(BIN)/cert-manager-crds/  the module's deploy/crds; test/controlplane installs them
#
# ACME, Vault, Venafi and cert-manager's own webhook are not built: see README,
# "Certificates". Included by the top-level Makefile, which defines ROOT and BIN.
# Each target is a file: when it is newer than its sources, nothing happens; `make
# certmanager-tools-clean` forgets them. The module is not in go.work and is
# always built with GOWORK=off, under the shared build lock.

ROOT ?= $(abspath .)
BIN ?= $(ROOT)/bin
BUILD_LOCK ?= /tmp/ai-webhook-build.lock

CERT_MANAGER_TOOLS_DIR := $(ROOT)/tools/certmanager
CERT_MANAGER_CRDS := $(BIN)/cert-manager-crds
CERT_MANAGER_TOOLS := $(BIN)/cainjector $(BIN)/cert-manager-controller $(CERT_MANAGER_CRDS)/cert-manager.io_certificates.yaml

.PHONY: certmanager-tools certmanager-tools-clean
certmanager-tools: $(CERT_MANAGER_TOOLS) ## Build cert-manager's CA injector and controller and copy its CRDs into bin/

$(BIN)/cainjector: $(CERT_MANAGER_TOOLS_DIR)/cainjector/main.go $(CERT_MANAGER_TOOLS_DIR)/go.mod
	mkdir -p $(BIN) && cd $(CERT_MANAGER_TOOLS_DIR) && GOWORK=off flock $(BUILD_LOCK) \
		go build -ldflags '-s -w' -o $(abspath $@) ./cainjector

$(BIN)/cert-manager-controller: $(CERT_MANAGER_TOOLS_DIR)/controller/main.go $(CERT_MANAGER_TOOLS_DIR)/go.mod
	mkdir -p $(BIN) && cd $(CERT_MANAGER_TOOLS_DIR) && GOWORK=off flock $(BUILD_LOCK) \
		go build -ldflags '-s -w' -o $(abspath $@) ./controller

$(CERT_MANAGER_CRDS)/cert-manager.io_certificates.yaml: $(CERT_MANAGER_TOOLS_DIR)/go.mod
	rm -rf $(CERT_MANAGER_CRDS) && mkdir -p $(CERT_MANAGER_CRDS) && cd $(CERT_MANAGER_TOOLS_DIR) && \
		cp "$$(GOWORK=off go list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager)"/deploy/crds/*.yaml $(CERT_MANAGER_CRDS)/ && \
		chmod u+w $(CERT_MANAGER_CRDS)/*.yaml

certmanager-tools-clean: ## Delete what certmanager-tools built
	rm -rf $(CERT_MANAGER_TOOLS) $(CERT_MANAGER_CRDS)
