// Package serverload tests the real ai-webhook binary as a client sees it: under hostile load
// in a memory-limited cgroup (attack_test.go), and across SIGTERM with clients sending
// continuously (drain_test.go). Loopback only; each test is bounded in count and time.
package serverload
