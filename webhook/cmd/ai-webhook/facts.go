package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/ai-webhook/ai-webhook/webhook/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/inject"
)

// readFacts gives the offline inject the cluster facts the server would have: from a snapshot
// file, from one read-only look at a cluster, or none (unknown: every class is set).
func readFacts(file, kubeconfig string) (inject.Facts, error) {
	switch {
	case file != "":
		return cluster.ReadSnapshot(file)
	case kubeconfig != "":
		client, err := cluster.Client(kubeconfig, "")
		if err != nil {
			return inject.Facts{}, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := cluster.Look(ctx, client)
		if err != nil {
			return inject.Facts{}, err
		}
		return s.Facts(), nil
	}
	return inject.Facts{}, nil
}

// Values of serve --cluster-facts.
const (
	clusterFactsOff = "off"
	clusterFactsOn  = "on"
)

// startWatcher connects the server to the cluster for --cluster-facts on. The informers run
// until ctx ends and retry an unreachable API server with backoff; readiness waits for their
// first list, so a replica that cannot read the cluster takes no reviews. Only a missing
// client configuration is an error.
func startWatcher(ctx context.Context, kubeconfig string, log *slog.Logger) (*cluster.Watcher, error) {
	client, err := cluster.Client(kubeconfig, "ai-webhook")
	if err != nil {
		return nil, fmt.Errorf("--cluster-facts on: %w", err)
	}
	w := cluster.NewWatcher(client, 10*time.Minute, log)
	w.Start(ctx)
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), w.Synced) {
			f := w.Facts()
			log.Info("cluster facts synced", "runtimeClasses", len(f.RuntimeClasses), "priorityClasses", len(f.PriorityClasses))
		}
	}()
	return w, nil
}
