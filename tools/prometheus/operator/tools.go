//go:build tools

// Package tools keeps controller-gen and the operator's API types required by this module so
// that `go mod tidy` does not drop them. ../tools.mk builds and runs controller-gen.
package tools

import (
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
