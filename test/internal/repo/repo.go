// Package repo locates the ai-webhook repository the tests and tools run in.
package repo

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Root is the repository root: the directory of the go.work the go command
// uses in dir (`go test` runs in the package directory, `go run` where it was
// started).
func Root(dir string) (string, error) {
	cmd := exec.Command("go", "env", "GOWORK")
	cmd.Dir = dir
	out, err := cmd.Output()
	if work := strings.TrimSpace(string(out)); err == nil && work != "" && work != "off" {
		return filepath.Dir(work), nil
	}
	return "", fmt.Errorf("no go.work for %s (go env GOWORK: %q, %v): run in the ai-webhook repository", dir, out, err)
}
