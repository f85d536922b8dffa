//go:build tools

// Package tools keeps the control-plane commands required by this module so
// that `go mod tidy` does not drop them. tools.mk builds each one.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
