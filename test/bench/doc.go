// Package bench measures the ai-webhook admission server, runs the same
// measurements against a reference webhook built on controller-runtime, and
// renders the figures that `make bench` writes to test/bench/BENCHMARKS.md.
//
// The parts, named in the code after what they measure and numbered in the
// report as in the benchmark issue:
//
//   - Throughput and latency, B1 (loadgen.go, servers.go, throughput.go): both servers run as separate
//     processes behind real TLS; a load generator of ours drives them over
//     HTTP/1.1 with kept-alive connections, closed loop for saturation and
//     open loop at fixed arrival rates for latency (measured from the intended
//     send time, so a slow server cannot slow the clock that judges it).
//     CPU time and peak RSS come from /proc/<pid>. A no-op server (noop.go) on the
//     same TLS stack calibrates what the transport alone costs.
//   - Admission cost, B2 and B3 (micro.go): the handlers in-process on Pods of growing size,
//     against the floor of decoding and encoding the same AdmissionReview.
//   - Pod creates, B4 (podcreate.go): Pods created through a real kube-apiserver
//     and etcd (package test/cluster, from bin/) with no webhook, with each server, and with
//     the no-op server answering with and without ai-webhook's patch, which splits the
//     overhead into the API server's share and ai-webhook's.
//   - B5 (overload.go): each B1 server offered the same open-loop load, 2x and
//     5x the higher saturated rate: accepted throughput, p99 of the accepted
//     requests, peak RSS over the phase.
//
// cmd/benchrun runs everything and writes the report (or, with -profile, writes pprof
// profiles of ai-webhook instead; profile.go); cmd/reference is the reference server.
// The smoke test runs each path once so the code can't rot; it asserts correctness,
// never timing.
package bench
