// Package monitoring tests infra/monitoring with the real Prometheus tools built by
// tools/prometheus (make tools): promtool checks and unit-tests every alert, and the
// Prometheus server's own PromQL parser reads every dashboard query, whose metrics must be
// ones our server exports (scraped from its --metrics-listen port) or the API server's.
package monitoring
