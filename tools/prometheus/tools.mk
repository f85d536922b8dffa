# tools/prometheus/tools.mk: the Prometheus server and promtool, built from the
# github.com/prometheus/prometheus module (tools/prometheus/go.mod; nothing but
# modules from the Go module proxy is downloaded).
#
#   $(BIN)/promtool    checks and unit-tests infra/monitoring's rules (test/monitoring)
#   $(BIN)/prometheus  scrapes the local cluster in test/e2e (the web UI's assets
#                      are not embedded: the API is all the tests use)
#
# Included by the top-level Makefile, which defines ROOT and BIN. Each binary is
# a file target: when it exists in $(BIN), nothing happens. To rebuild after
# changing the version in tools/prometheus/go.mod, delete the binary or run
# `make prometheus-tools-clean`.
#
# The module is not in go.work and is always built with GOWORK=off. The build
# takes the shared build lock so that only one heavy build runs at a time.

ROOT ?= $(abspath .)
BIN ?= $(ROOT)/bin
BUILD_LOCK ?= /tmp/ai-webhook-build.lock

PROMETHEUS_TOOLS_DIR := $(ROOT)/tools/prometheus
PROMETHEUS_TOOLS := $(BIN)/promtool $(BIN)/prometheus

# Stamp the version `prometheus --version` and promtool report.
PROMETHEUS_VERSION := $(shell sed -n 's/^require github.com\/prometheus\/prometheus v//p' $(PROMETHEUS_TOOLS_DIR)/go.mod)
PROMETHEUS_LDFLAGS := -s -w -X github.com/prometheus/common/version.Version=$(PROMETHEUS_VERSION)

prometheus_build = mkdir -p $(BIN) && cd $(PROMETHEUS_TOOLS_DIR) && GOWORK=off flock $(BUILD_LOCK) \
	go build -ldflags '$(PROMETHEUS_LDFLAGS)' -o $(abspath $@) $(1)

.PHONY: prometheus-tools prometheus-tools-clean
prometheus-tools: $(PROMETHEUS_TOOLS) ## Build promtool and the Prometheus server into bin/

$(BIN)/promtool:
	$(call prometheus_build,github.com/prometheus/prometheus/cmd/promtool)

$(BIN)/prometheus:
	$(call prometheus_build,github.com/prometheus/prometheus/cmd/prometheus)

prometheus-tools-clean: ## Delete the binaries built by prometheus-tools
	rm -f $(PROMETHEUS_TOOLS)
