// Package repo locates the ai-webhook repository the tests and tools run in.
package repo

import (
	"fmt"
	"os"
	"path/filepath"
)

// Root is the repository root: the directory holding go.work at or above dir
// (`go test` runs in the package directory, `go run` where it was started).
func Root(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work at or above %s: run from the ai-webhook repository", dir)
		}
	}
}
