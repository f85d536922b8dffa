# tools/localcluster/localcluster.mk: `make up` / `make down`, the local
# cluster and the dev stack deployed on it.
#
#   make up       build what is missing, start the local cluster, deploy the
#                 dev stack, print its outputs and how to try it
#   make down     stop the cluster and delete its state and the local stack state
#   make kubectl ARGS="get pods -A"       kubectl against the local cluster
#   make pulumi  ARGS="stack output"      pulumi on the local dev stack
#
# The cluster (package ./cluster: etcd, kube-apiserver,
# kube-controller-manager, kwok, and the real ai-webhook processes standing in
# for the webhook's Pods) runs in its own network and PID namespaces; the
# machine's routing table is never touched. State lives in $(LOCAL_DIR)
# (git-ignored). The tls provider on PATH here is the test-only stand-in from
# tools/pulumi; a normal `pulumi up` uses the real pulumi-tls plugin.
#
# Included by the top-level Makefile after tools/k8s/tools.mk and
# tools/pulumi/tools.mk (k8s-tools and pulumi-tools targets). The end-to-end
# test runs `make pulumi` with the LOCAL_* variables, DEPLOY and
# IN_LOCAL_CLUSTER pointing at its own cluster and stack.

ROOT ?= $(abspath .)
BIN ?= $(ROOT)/bin

LOCAL_DIR ?= $(ROOT)/.local
LOCAL_CLUSTER_DIR ?= $(LOCAL_DIR)/cluster
LOCAL_PULUMI_DIR ?= $(LOCAL_DIR)/pulumi
LOCAL_PULUMI_HOME ?= $(LOCAL_PULUMI_DIR)/home
LOCAL_PROJECT ?= $(ROOT)
LOCAL_STACK ?= dev
# The pulumi CLI and the provider plugins (found on PATH as ambient plugins).
LOCAL_PATH ?= $(BIN)
DEPLOY ?= $(BIN)/deploy
# Passphrase of the local stack's secrets (a throwaway local stack: not a secret).
LOCAL_PULUMI_PASSPHRASE ?= ai-webhook-local

# Pulumi with a local file backend, no update checks, no plugin downloads.
LOCAL_PULUMI_ENV = PATH="$(LOCAL_PATH):$$PATH" \
	PULUMI_HOME="$(LOCAL_PULUMI_HOME)" \
	PULUMI_BACKEND_URL="file://$(LOCAL_PULUMI_DIR)/state" \
	PULUMI_CONFIG_PASSPHRASE="$(LOCAL_PULUMI_PASSPHRASE)" \
	PULUMI_SKIP_UPDATE_CHECK=true \
	PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
IN_LOCAL_CLUSTER ?= $(BIN)/localcluster exec --state $(LOCAL_CLUSTER_DIR) --

.PHONY: up down kubectl pulumi local-binaries local-status

# Our own commands, rebuilt every time (seconds, from the build cache).
local-binaries:
	@mkdir -p $(BIN)
	cd $(ROOT) && go build -o $(BIN)/ai-webhook ./webhook/cmd/ai-webhook
	cd $(ROOT) && go build -o $(BIN)/deploy ./infra/cmd/deploy
	cd $(ROOT) && go build -o $(BIN)/localcluster ./tools/localcluster

# --refresh: after a reboot the cluster is new but the local stack state is
# not; refreshing first recreates whatever the state remembers but the cluster lacks.
up: k8s-tools pulumi-tools local-binaries ## Start the local cluster and deploy the dev stack on it
	$(BIN)/localcluster up --state $(LOCAL_CLUSTER_DIR) --bin $(BIN)
	$(LOCAL_PULUMI_ENV) $(IN_LOCAL_CLUSTER) $(DEPLOY) up --refresh --stack $(LOCAL_STACK) --cwd $(LOCAL_PROJECT)
	@echo
	@echo "The webhook runs on the local cluster. Try it (dev stack: namespaces opt in with a label):"
	@echo '  make kubectl ARGS="create namespace ml-team"'
	@echo '  make kubectl ARGS="label namespace ml-team ai.example.com/inject=enabled"'
	@echo '  make kubectl ARGS="apply -f webhook/examples/pods/pytorch-training.yaml"'
	@echo '  make kubectl ARGS="get pod trainer-0 -n ml-team -o yaml"'
	@echo "The stored Pod has the profile applied: runtimeClassName nvidia, an nvidia.com/gpu limit, a GPU"
	@echo "toleration, a /dev/shm volume, NCCL/OMP env and the annotation ai.example.com/injected."
	@echo '  make pulumi ARGS="stack output"      # the stack outputs again'
	@echo '  make down                            # stop the cluster and forget the local stack'

down: ## Stop the local cluster and delete its state and the local stack state
	@if [ -x $(BIN)/localcluster ]; then $(BIN)/localcluster down --state $(LOCAL_CLUSTER_DIR); fi
	rm -rf $(LOCAL_CLUSTER_DIR) $(LOCAL_PULUMI_DIR)

kubectl: ## Run kubectl against the local cluster: make kubectl ARGS="get pods -A"
	@$(IN_LOCAL_CLUSTER) $(BIN)/kubectl $(ARGS)

# up, preview, refresh and destroy run the program, which the pulumi CLI can
# only do through a Go language host; they go to the deploy command instead:
# the same program (webhookstack.Program) through the Automation API, on the
# same stack, config and state. --yes is dropped (deploy never asks). Commands
# that need the language host for anything else are refused with the ones to
# use. Everything else is the pulumi CLI itself.
pulumi: ## Pulumi on the local dev stack: make pulumi ARGS="config set --path namespaceSelector.mode optOut", ARGS="preview", ARGS="up"
	@set -- $(ARGS); op=$${1:-}; [ $$# -gt 0 ] && shift; \
	case "$$op" in \
	up|update|preview|pre|refresh|destroy|down|dn) \
		case "$$op" in update) op=up;; pre) op=preview;; down|dn) op=destroy;; esac; \
		for a; do shift; case "$$a" in --yes|-y|--skip-preview|-f) ;; *) set -- "$$@" "$$a";; esac; done; \
		$(LOCAL_PULUMI_ENV) $(IN_LOCAL_CLUSTER) $(DEPLOY) --stack $(LOCAL_STACK) --cwd $(LOCAL_PROJECT) $$op "$$@";; \
	watch|import|install|convert|new) \
		echo "pulumi $$op needs a Go language host, which the local setup does not use." >&2; \
		echo "Run the program with: make pulumi ARGS=\"preview\" or make pulumi ARGS=\"up\" (through infra/cmd/deploy)." >&2; \
		exit 2;; \
	*) $(LOCAL_PULUMI_ENV) $(IN_LOCAL_CLUSTER) $(BIN)/pulumi --cwd $(LOCAL_PROJECT) $${op:+"$$op"} "$$@";; \
	esac

local-status: ## Is the local cluster running?
	@$(BIN)/localcluster status --state $(LOCAL_CLUSTER_DIR)
