//go:build tools

// Package tools keeps the etcd server (the module root of
// go.etcd.io/etcd/server/v3 is package main) required by this module.
package tools

import _ "go.etcd.io/etcd/server/v3"
