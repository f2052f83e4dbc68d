// Package testenv holds what every test that needs a real tool or server
// shares: finding the repository and its pinned tools, free ports, waiting
// for a server, starting a process that is always stopped and whose log is
// shown when the test fails, and building and starting Berth itself.
//
// A missing tool skips the test on a developer's machine and fails it under
// CI=true, so CI can never pass by skipping what it was meant to run.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// modulePath identifies Berth's go.mod while walking up to the repo root.
const modulePath = "github.com/berth-registry/berth"

// InCI reports whether the tests run under CI (CI=true), where anything
// missing is a failure rather than a skip.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Missing skips the test, or fails it under CI, because something it needs
// is not there; hint says how to get it.
func Missing(t testing.TB, what, hint string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required under CI=true: %s", what, hint)
	}
	t.Skipf("%s not available (%s)", what, hint)
}

// RepoRoot returns the root of the Berth repository the test runs in.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && isBerthModule(string(b)) {
			return dir, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find repo root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repo root: no go.mod for " + modulePath + " above the working directory")
		}
		dir = parent
	}
}

func isBerthModule(gomod string) bool {
	for _, line := range strings.Split(gomod, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return f[1] == modulePath
		}
	}
	return false
}

// systemTools says how to install the tools that come from the OS rather
// than from scripts/tools.sh.
var systemTools = map[string]string{
	"docker":       "apt-get install -y docker.io",
	"dockerd":      "apt-get install -y docker.io",
	"skopeo":       "apt-get install -y skopeo",
	"redis-server": "apt-get install -y redis-server",
	"redis-cli":    "apt-get install -y redis-server",
	"haproxy":      "apt-get install -y haproxy",
}

// Tool returns the path of the named tool: the pinned build in .cache/bin
// first, then PATH. When it is missing the test is skipped, or failed under
// CI, with the command that installs it.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, ".cache", "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	hint, ok := systemTools[name]
	if !ok {
		hint = "make tools (or scripts/tools.sh " + name + ")"
	}
	Missing(t, name, "install it with: "+hint)
	return ""
}
