package main

import (
	"context"
	"fmt"

	"github.com/ai-webhook/ai-webhook/webhook/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
	"github.com/ai-webhook/ai-webhook/webhook/server"
)

// watchPodDrift starts the metadata-only Pod watch behind ai_webhook_pods_out_of_date for
// serve --pods-out-of-date-metric on: counted at each scrape with the profiles in use then.
// Readiness does not wait for it (it serves no admission); the metric is absent until the
// first list.
func watchPodDrift(ctx context.Context, kubeconfig, domain string, srv *server.Server) error {
	client, err := cluster.MetadataClient(kubeconfig, "ai-webhook")
	if err != nil {
		return fmt.Errorf("--pods-out-of-date-metric on: %w", err)
	}
	d := cluster.NewPodDrift(profile.KeysFor(domain))
	d.Watch(ctx, client)
	srv.Metrics().PodsOutOfDate(func() map[string]int { return d.OutOfDate(srv.Profiles()) })
	return nil
}
