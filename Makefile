# ai-webhook: the admission server (webhook/), its Pulumi stack (infra/), and the tests that
# run both against a real control plane built from Go modules (tools/, test/).
ROOT := $(abspath .)
BIN  := $(ROOT)/bin
GO   ?= go
IMAGE ?= ai-webhook:dev
# The product modules, the test module and the local environment of make up (its command and
# the cluster package every test runs), all in go.work.
PKGS := ./webhook/... ./infra/... ./test/... ./tools/localcluster/...

include tools/k8s/tools.mk
include tools/pulumi/tools.mk
include tools/prometheus/tools.mk
include tools/certmanager/tools.mk
include tools/localcluster/localcluster.mk

.DEFAULT_GOAL := help
.PHONY: help build test unit lint bench image tools fmt

help: ## List the targets
	@grep -hE '^[a-z][a-zA-Z0-9_-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: ## Build the webhook binary into bin/ and compile everything
	$(GO) build -o $(BIN)/ai-webhook ./webhook/cmd/ai-webhook
	$(GO) build $(PKGS)

tools: $(K8S_TOOLS) $(PULUMI_TOOLS) $(PROMETHEUS_TOOLS) $(CERT_MANAGER_TOOLS) ## Build the control plane, Pulumi, Prometheus and cert-manager binaries the tests use (once)

test: lint tools pulumi-tools-test ## Every test: unit, fuzz seeds, control plane, pulumi up end to end
	$(GO) test -count=1 -timeout 40m $(PKGS)

unit: ## Only the fast tests of the product modules (no tools needed)
	$(GO) test ./webhook/... ./infra/...

lint: ## gofmt check and go vet
	@unformatted=$$(gofmt -l webhook infra test tools); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

fmt: ## Format all Go code
	gofmt -w webhook infra test tools

bench: $(BIN)/kube-apiserver $(BIN)/etcd ## Benchmarks: Go micro-benchmarks, then B1-B4 against the reference (rewrites test/bench/BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -skip PodDriftMemory -benchmem -benchtime 2000x ./webhook/...
	# One pass of 100k Pods is the measurement; 2000 of them would take hours.
	$(GO) test -run '^$$' -bench PodDriftMemory -benchmem -benchtime 1x ./webhook/cluster/
	flock /tmp/ai-webhook-build.lock $(GO) run ./test/bench/cmd/benchrun -out test/bench/BENCHMARKS.md

image: ## Build the container image (needs a Docker engine)
	@if docker info >/dev/null 2>&1; then docker build -t $(IMAGE) .; \
	else echo "no Docker engine here: run 'docker build -t $(IMAGE) .' where one runs"; exit 1; fi
