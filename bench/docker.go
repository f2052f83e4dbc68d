package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// dockerCheck returns why scenario 10 cannot run here, or "".
func dockerCheck(ctx context.Context) string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "no docker command"
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.IndexByte(msg, '\n'); i > 0 {
			msg = msg[:i]
		}
		return "docker info failed (no dockerd?): " + msg
	}
	return ""
}

// dockerContext writes the build context of a FROM scratch image with
// one layer per file, each of distinct random bytes.
func (h *harness) dockerContext() (string, error) {
	dir := filepath.Join(h.work, "docker-context")
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var df strings.Builder
	df.WriteString("FROM scratch\n")
	for i := range h.sz.layers {
		name := fmt.Sprintf("layer%02d", i)
		if err := os.WriteFile(filepath.Join(dir, name), randomBytes(uint64(5000+i), int(h.sz.layerSize)), 0o644); err != nil {
			return "", err
		}
		fmt.Fprintf(&df, "COPY %s /%s\n", name, name)
	}
	return dir, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df.String()), 0o644)
}

func (h *harness) docker(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "docker", args...)
	// A private client config, and the classic builder: the daemon may
	// have no BuildKit.
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(h.work, "docker-config"), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func imageName(c *client) string { return c.base.Host + "/bench/app:1" }

// setupDocker builds the image, tagged for the server, before the clock
// starts.
func setupDocker(ctx context.Context, h *harness, c *client) error {
	dir, err := h.dockerContext()
	if err != nil {
		return err
	}
	return h.docker(ctx, "build", "-q", "-t", imageName(c), dir)
}

// measureDocker times docker push, then docker pull after the image (and
// with it every layer) was removed; the removal is not timed.
func measureDocker(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	img := imageName(c)
	defer func() { _ = h.docker(context.WithoutCancel(ctx), "rmi", "-f", img) }()
	start := time.Now()
	if err := h.docker(ctx, "push", "-q", img); err != nil {
		return nil, err
	}
	pushed := time.Since(start)
	if err := h.docker(ctx, "rmi", img); err != nil {
		return nil, err
	}
	start = time.Now()
	if err := h.docker(ctx, "pull", "-q", img); err != nil {
		return nil, err
	}
	return []float64{(pushed + time.Since(start)).Seconds()}, nil
}
