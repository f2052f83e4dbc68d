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

	"github.com/berth-registry/berth/internal/roundrobin"
)

// The fleet scenario (S9) compares Berth as one instance with Berth as two
// on one bucket, each behind the same round-robin front: what an operator
// gains by adding an instance. Both columns go through the front, so the
// proxy's cost is in both and the ratio is the second instance's alone.

// fleetRows are S9's rows.
func fleetRows(sz sizes) []row {
	front := "through a haproxy round-robin front: two Berth instances on one bucket and one Redis (Berth column) against one (Distribution column)"
	return []row{
		{"S9", "GET a manifest by tag and by digest, 32 connections, " + front, "req/s", throughput, 0},
		{"S9b", "registry CPU per request, all instances (user + system)", "µs", cost, 0},
		{"S9c", "load generator CPU per request, beside them", "µs", info, 0},
		{"S9d", "machine CPU busy during the GETs, all cores", "%", info, 0},
		{"S9e", fmt.Sprintf("push %d blobs of 64 KiB, 16 at a time, through the same front", sz.smallBlobs), "blobs/s", throughput, 0},
		{"S9f", "machine CPU busy during the pushes, all cores", "%", info, 0},
	}
}

// measureFleet is S9: manifest GETs, then small pushes, each with how busy
// the whole machine was meanwhile.
func measureFleet(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	busy, err := machineBusy()
	if err != nil {
		return nil, err
	}
	before, err := s.instanceCPU()
	if err != nil {
		return nil, err
	}
	gets, err := measureManifestGets(ctx, h, s, c)
	if err != nil {
		return nil, err
	}
	// A front that sent everything to one instance would make the second
	// column one instance's too: each must have worked.
	after, err := s.instanceCPU()
	if err != nil {
		return nil, err
	}
	for i := range after {
		if after[i] <= before[i] {
			return nil, fmt.Errorf("instance %d of %s used no CPU during the GETs: the front did not reach it", i+1, s.name)
		}
	}
	getBusy, err := busy()
	if err != nil {
		return nil, err
	}
	if busy, err = machineBusy(); err != nil {
		return nil, err
	}
	pushes, err := measureSmallPushes(ctx, h, s, c)
	if err != nil {
		return nil, err
	}
	pushBusy, err := busy()
	if err != nil {
		return nil, err
	}
	return append(gets, getBusy, pushes[0], pushBusy), nil
}

// instanceCPU is the CPU time of each instance of s so far.
func (s *server) instanceCPU() ([]time.Duration, error) {
	var out []time.Duration
	for _, p := range append([]*server{s}, s.peers...) {
		c, err := processCPU(p.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// fleetSpecs are S9's two servers: one Berth instance behind the front
// (Distribution's column) and two (Berth's).
func (h *harness) fleetSpecs() [2]serverSpec {
	b := h.specs[1]
	return [2]serverSpec{
		{name: "berth×1", bin: b.bin, fleet: 1},
		{name: "berth×2", bin: b.bin, fleet: 2},
	}
}

// fleetSkip says why S9 cannot run here: it needs haproxy and, for the
// shared cache a fleet runs with, redis-server.
func fleetSkip(h *harness) string {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return "haproxy not installed (apt-get install -y haproxy)"
	}
	return redisSkip(h)
}

// startFleet starts spec.fleet-1 more instances beside first, with the same
// config file (so the same storage, Redis and secret), and a haproxy
// before them all; first's addr becomes the front's.
func (h *harness) startFleet(ctx context.Context, first *server, spec serverSpec, cfg string) error {
	backends := []string{first.addr}
	for range spec.fleet - 1 {
		dir, err := os.MkdirTemp(h.work, spec.name+"-peer-")
		if err != nil {
			return err
		}
		// The first instance owns the storage root and the Redis.
		p, err := h.launch(ctx, spec, cfg, dir, "", &storageRoot{cleanup: func() {}}, func() {})
		if err != nil {
			return err
		}
		first.peers = append(first.peers, p)
		backends = append(backends, p.addr)
	}
	f, err := startHAProxy(ctx, first.dir, backends)
	if err != nil {
		return err
	}
	first.front, first.addr = f, f.addr
	return nil
}

// haproxy is one haproxy process in HTTP mode balancing each request
// round-robin over its backends, keeping connections to them open.
type haproxy struct {
	*proc
	addr string
}

func startHAProxy(ctx context.Context, dir string, backends []string) (*haproxy, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(roundrobin.HAProxyConfig(addr, 4096, backends)), 0o644); err != nil {
		return nil, err
	}
	// -db: stay in the foreground, so the process started is the one
	// stopped.
	p, err := startProc("haproxy", exec.Command(bin, "-db", "-f", cfg), filepath.Join(dir, "haproxy.log"))
	if err != nil {
		return nil, err
	}
	f := &haproxy{proc: p, addr: addr}
	if err := waitHTTP(ctx, "http://"+addr+"/v2/", f.done, 30*time.Second); err != nil {
		f.stop()
		return nil, fmt.Errorf("haproxy: %w\n%s", err, tail(filepath.Join(dir, "haproxy.log")))
	}
	return f, nil
}

// machineBusy samples the whole machine's CPU (/proc/stat, all cores);
// the returned function gives the share of it that was busy since, in
// percent of all cores: near 100, the machine, not the registry, was the
// bound.
func machineBusy() (func() (float64, error), error) {
	busy0, total0, err := readCPUStat()
	if err != nil {
		return nil, err
	}
	return func() (float64, error) {
		busy1, total1, err := readCPUStat()
		if err != nil {
			return 0, err
		}
		if total1 <= total0 {
			return 0, errors.New("/proc/stat did not advance")
		}
		return 100 * float64(busy1-busy0) / float64(total1-total0), nil
	}, nil
}

// readCPUStat reads the aggregate cpu line of /proc/stat: busy and total
// ticks (idle and iowait count as not busy).
func readCPUStat() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}
