package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/release"
)

// BinaryEnv names a registry binary to test instead of building
// ./cmd/berth. Pointing it at CNCF Distribution's registry (same verbs,
// same config, same REGISTRY_* overrides) shows which failures are Berth's.
const BinaryEnv = "BERTH_TEST_BINARY"

// berthBuild is the one build of ./cmd/berth per test binary; building is
// slow and its result cannot differ between the tests of one run.
var berthBuild struct {
	once sync.Once
	path string
	out  string
	err  error
}

// BuildBerth returns the path of a berth binary built from this checkout,
// once per test binary (or the binary named by $BERTH_TEST_BINARY).
func BuildBerth(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	root := RepoRoot(t)
	berthBuild.once.Do(func() {
		berthBuild.path, berthBuild.out, berthBuild.err = buildBerth(root)
	})
	if berthBuild.err != nil {
		t.Fatalf("testenv: build ./cmd/berth: %v\n%s", berthBuild.err, berthBuild.out)
	}
	return berthBuild.path
}

// buildBerth builds, with the release build tags, into .cache/test under
// a unique name, then renames it into place: test binaries of several
// packages build at once, and a rename never leaves a half-written file
// where another one execs it.
func buildBerth(root string) (path, out string, err error) {
	dir := filepath.Join(root, ".cache", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.CreateTemp(dir, "berth-build-")
	if err != nil {
		return "", "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-tags", release.BuildTags, "-o", tmp.Name(), "./cmd/berth")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", string(b), err
	}
	path = filepath.Join(dir, "berth")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", "", err
	}
	return path, "", nil
}

// StartBerth writes configYAML to a file, runs `berth serve FILE` on a free
// loopback port (REGISTRY_HTTP_ADDR overrides http.addr) with env added, and
// waits until GET /v2/ answers. It returns "127.0.0.1:PORT". The server is
// stopped when the test ends.
func StartBerth(t testing.TB, configYAML string, env ...string) string {
	t.Helper()
	addr, _ := StartBerthProcess(t, configYAML, env...)
	return addr
}

// StartBerthProcess is StartBerth that also returns the running process,
// for tests that signal it or read its log.
func StartBerthProcess(t testing.TB, configYAML string, env ...string) (string, *Process) {
	t.Helper()
	bin := BuildBerth(t)
	cfg := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	addr := FreeAddr(t)
	env = append([]string{"REGISTRY_HTTP_ADDR=" + addr}, env...)
	p := StartProcess(t, bin, []string{"serve", cfg}, env)
	p.WaitHTTP(t, "http://"+addr+"/v2/", 30*time.Second)
	return addr, p
}

// Docker returns the docker CLI's path once `docker info` shows a running
// daemon; otherwise the test is skipped, or failed under CI.
func Docker(t testing.TB) string {
	t.Helper()
	docker := Tool(t, "docker")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, docker, "info").CombinedOutput()
	if err != nil {
		t.Logf("docker info: %v\n%s", err, out)
		Missing(t, "a running dockerd", "start it with: dockerd --iptables=false --bridge=none --storage-driver=vfs &")
	}
	return docker
}

// Run runs name with args and returns its standard output, failing the
// test with both outputs when it exits non-zero.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return RunIn(t, "", name, args...)
}

// RunQuiet runs name with args and returns its error with the output, for
// cleanups and best-effort steps that have no test to fail.
func RunQuiet(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// RunIn is Run in directory dir.
func RunIn(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
