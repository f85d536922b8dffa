// Package jsonpatch builds RFC 6902 operations. The injector emits operations for exactly
// what it changes, so a patch's cost grows with the change, never with the Pod.
package jsonpatch

import "strings"

// Operation is one RFC 6902 operation. omitempty on an interface drops only a nil Value
// (remove), never an empty string or zero, which are legitimate values to add.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Add and Replace are what the injector uses for settings: it never removes what a user wrote.
func Add(path string, value any) Operation { return Operation{Op: "add", Path: path, Value: value} }
func Replace(path string, value any) Operation {
	return Operation{Op: "replace", Path: path, Value: value}
}

// Remove drops a member; used only for values an admission plugin recomputes from a class the
// profile changed (spec.priority and spec.preemptionPolicy, spec.overhead).
func Remove(path string) Operation { return Operation{Op: "remove", Path: path} }

var escaper = strings.NewReplacer("~", "~0", "/", "~1")

// Escape makes a map key (a label name like "nvidia.com/gpu") safe as a JSON-pointer token.
func Escape(key string) string {
	if !strings.ContainsAny(key, "~/") {
		return key
	}
	return escaper.Replace(key)
}
