// Package repo locates the ai-webhook repository the tests and tools run in,
// and builds its commands.
package repo

import (
	"fmt"
	"os/exec"
	"path"
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

// Webhook is the package of the ai-webhook binary.
const Webhook = "./webhook/cmd/ai-webhook"

// Build builds the command pkg (relative to root, e.g. Webhook) in workspace
// mode from the repository root, as the Makefile does, into dir, and returns
// the binary's path: dir and the package's last element.
func Build(root, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s in %s: %v\n%s", pkg, root, err, out)
	}
	return bin, nil
}
