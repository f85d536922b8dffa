//go:build tools

// Package tools keeps the Prometheus commands required by this module so that
// `go mod tidy` does not drop them. tools.mk builds each one.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
