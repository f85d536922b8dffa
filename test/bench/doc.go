// Package bench measures the ai-webhook admission server, runs the same
// measurements against a reference webhook built on controller-runtime
// (package reference), and renders the figures that `make bench`
// (cmd/benchrun, through Run) writes to test/bench/BENCHMARKS.md, where the
// method of each part is described:
//
//   - Throughput and latency, B1 (loadgen.go, servers.go, throughput.go): the
//     servers as separate processes behind real TLS, driven over HTTP/1.1
//     closed loop (saturation) and open loop at fixed rates (latency from the
//     intended send time); a no-op server (noop.go) calibrates the transport.
//   - Admission cost, B2 and B3 (micro.go): the handlers in-process on Pods of
//     growing size, against the floor of decoding and encoding the review.
//   - Pod creates, B4 (podcreate.go): through a real kube-apiserver and etcd
//     (package tools/localcluster/cluster) with no webhook and with each server.
//   - Overload, B5 (overload.go): the same open-loop load, 2x and 5x the
//     higher saturated rate, offered to each server.
//
// The smoke test runs each path once so the code can't rot; it asserts
// correctness, never timing.
package bench
