package testenv

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Dockerd is a second Docker daemon started by a test, with its own data
// root, socket and daemon.json, so its settings (registry-mirrors) do not
// touch the machine's daemon. Run docker against it with Host.
type Dockerd struct {
	Host string // unix:///…/docker.sock, for docker -H
	// Containerd is the socket of the containerd this daemon runs, for
	// ctr -a.
	Containerd string
	Proc       *Process
}

// StartDockerd starts dockerd with settings written as its daemon.json
// (merged over a private data root, exec root, pid file and socket) and
// waits until it answers. Needs root; skipped (failed under CI) without
// dockerd.
func StartDockerd(t testing.TB, settings map[string]any) *Dockerd {
	t.Helper()
	bin := Tool(t, "dockerd")
	docker := Tool(t, "docker")
	if os.Geteuid() != 0 {
		Missing(t, "root to run a second dockerd", "run the test as root")
	}
	// Short paths: a unix socket path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "dkd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "d.sock")
	cfg := map[string]any{
		"data-root":      filepath.Join(dir, "data"),
		"exec-root":      filepath.Join(dir, "exec"),
		"pidfile":        filepath.Join(dir, "d.pid"),
		"hosts":          []string{"unix://" + sock},
		"iptables":       false,
		"bridge":         "none",
		"storage-driver": "vfs",
	}
	for k, v := range settings {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Dockerd{Host: "unix://" + sock, Containerd: filepath.Join(dir, "exec", "containerd", "containerd.sock")}
	d.Proc = StartProcess(t, bin, []string{"--config-file", cfgPath}, nil)
	err = poll(90*time.Second, d.Proc.done, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, docker, "-H", d.Host, "version").Run()
	})
	if err != nil {
		t.Fatalf("testenv: second dockerd not answering: %v\n%s", err, d.Proc.Log())
	}
	return d
}
