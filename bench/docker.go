package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	if _, err := dockerCPU(); err != nil {
		return err.Error()
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
	_, err := h.dockerOutput(ctx, args...)
	return err
}

// dockerOutput runs docker with args and returns what it printed.
func (h *harness) dockerOutput(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	// A private client config, and the classic builder: the daemon may
	// have no BuildKit.
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(h.work, "docker-config"), "DOCKER_BUILDKIT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// checkTransferred fails unless docker's output of a push or pull reports
// each of the image's layers as sent (status "Pushed") or received ("Pull
// complete"). A layer docker finds on either side already ("Layer already
// exists", "Mounted from", "Already exists") is not transferred, and the
// row would time and cost fewer layers than it claims: an image left in
// the daemon that holds the same layers is enough. Docker prints these
// lines for layers only (the config blob moves without one), one per
// distinct layer, and dockerContext makes every layer distinct.
func checkTransferred(out, verb, status string, layers int) error {
	n := 0
	for line := range strings.Lines(out) {
		if strings.HasSuffix(strings.TrimSpace(line), ": "+status) {
			n++
		}
	}
	if n != layers {
		return fmt.Errorf("docker %s reported %d of the image's %d layers as %q (a layer found there already is not transferred):\n%s", verb, n, layers, status, out)
	}
	return nil
}

func imageName(c *client) string { return c.base.Host + "/bench/app:1" }

// setupDocker builds the image, tagged for the server, before the clock
// starts.
func setupDocker(ctx context.Context, h *harness, _ *server, c *client) error {
	dir, err := h.dockerContext()
	if err != nil {
		return err
	}
	return h.docker(ctx, "build", "-q", "-t", imageName(c), dir)
}

// measureDocker times docker push, then docker pull after the image (and
// with it every layer) was removed; the removal is not timed. Beside the
// wall time it reads the CPU time the registry and docker spent in the
// two, which tells how much of the row the registry can move. Each of the
// two must have moved every layer (checkTransferred).
func measureDocker(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	img := imageName(c)
	defer func() { _ = h.docker(context.WithoutCancel(ctx), "rmi", "-f", img) }()
	var wall, server, dock time.Duration
	timed := func(status string, args ...string) error {
		s0, err := s.cpu()
		if err != nil {
			return err
		}
		d0, err := dockerCPU()
		if err != nil {
			return err
		}
		start := time.Now()
		out, err := h.dockerOutput(ctx, args...)
		if err != nil {
			return err
		}
		wall += time.Since(start)
		s1, err := s.cpu()
		if err != nil {
			return err
		}
		d1, err := dockerCPU()
		if err != nil {
			return err
		}
		server, dock = server+s1-s0, dock+d1-d0
		return checkTransferred(out, args[0], status, h.sz.layers)
	}
	if err := timed("Pushed", "push", img); err != nil {
		return nil, err
	}
	if err := h.docker(ctx, "rmi", img); err != nil {
		return nil, err
	}
	if err := timed("Pull complete", "pull", img); err != nil {
		return nil, err
	}
	return []float64{wall.Seconds(), server.Seconds(), dock.Seconds()}, nil
}

// dockerCPU is the CPU time docker has spent so far: every process in the
// daemon's tree (dockerd, the containerd it runs when it runs one, as on
// the machines here, and the children they waited for, such as
// compressors), and the docker commands this process ran and waited for.
// A containerd run as a service of its own is not counted. Each process is
// read once, one after the other, so a short-lived child that ends between
// two reads may be missed or counted twice: a few milliseconds against
// the seconds docker spends in row 10.
func dockerCPU() (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	procs := map[int]procStat{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil { // else exited meanwhile
			procs[pid] = st
		}
	}
	inTree := func(pid int) bool {
		for range 64 { // deeper than any real tree; guards a loop
			p, ok := procs[pid]
			if !ok {
				return false
			}
			if p.comm == "dockerd" {
				return true
			}
			pid = p.ppid
		}
		return false
	}
	var total time.Duration
	found := false
	for pid, st := range procs {
		if inTree(pid) {
			found = found || st.comm == "dockerd"
			total += st.own + st.reaped
		}
	}
	if !found {
		return 0, errors.New("no dockerd process on this machine: docker's CPU cannot be read")
	}
	return total + childrenCPU(), nil
}
