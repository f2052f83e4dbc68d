package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-registry/berth/internal/release"
)

// registryConfig is the one config both servers run with, as the
// registry:2 image ships it (blob descriptor cache in memory, the
// storage health check) plus deletes, which Berth's
// cache invalidation must pay for. storage is the storage section's
// backend block, indented under storage:. http.addr comes from
// REGISTRY_HTTP_ADDR.
const registryConfig = `version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
%s
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:5000
  headers:
    X-Content-Type-Options: [nosniff]
%s
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`

// server is one running registry process.
type server struct {
	name string // "distribution" or "berth"
	addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}
	dir  string // config and log
	// debug is the http.debug.addr (pprof), or "".
	debug string
	logf  *os.File
	stor  *storageRoot
	// retire takes the server's directories out of the way once it
	// stopped (harness.retire).
	retire func(dir string)
	// stopRedis ends the server's Redis, when it has one.
	stopRedis func()
	// peers are the other instances of a fleet, on the same storage and
	// Redis; front is the round-robin proxy before all of them, whose
	// address is addr.
	peers []*server
	front *haproxy
}

// serverSpec says how to start one of the two registries.
type serverSpec struct {
	name string
	bin  string
	// extra, when set, gives config sections to append, for a server
	// whose directory is dir.
	extra func(dir string) string
	// fleet, when above 0, runs that many instances of bin on one storage
	// root (and one Redis), with one http.secret, behind a haproxy that
	// sends each request to the next instance in turn.
	fleet int
}

// startServer starts spec on a free loopback port over a fresh storage
// root, or on shared when it is not nil, and waits until /v2/ answers.
// debugAddr, when not empty, is its http.debug.addr (pprof on Berth). With
// redis, the server gets a Redis of its own as its blob descriptor cache;
// extra is appended to the config (a proxy section).
func (h *harness) startServer(ctx context.Context, spec serverSpec, debugAddr string, redis bool, extra string, shared *storageRoot) (*server, error) {
	stor := shared.borrowed()
	if stor == nil {
		var err error
		if stor, err = h.newStorage(ctx); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(h.work, spec.name+"-")
	if err != nil {
		stor.cleanup()
		return nil, err
	}
	debug := ""
	if spec.fleet > 0 {
		// Instances share one debug address no better than one port; an
		// upload begun on one is continued on another, so all sign its
		// state with one secret, as a deployment's do.
		debugAddr, debug = "", "  secret: bench-fleet-secret-shared-by-every-instance"
	}
	if debugAddr != "" {
		debug = "  debug:\n    addr: " + debugAddr
	}
	cfgText := fmt.Sprintf(registryConfig, stor.yaml, debug)
	stopRedis := func() {}
	if redis {
		addr, stop, err := startRedis(ctx, dir)
		if err != nil {
			stor.cleanup()
			return nil, err
		}
		cfgText, stopRedis = withRedis(cfgText, addr), stop
	}
	cfg := filepath.Join(dir, "config.yml")
	if spec.extra != nil {
		cfgText += spec.extra(dir)
	}
	cfgText += extra
	if err := os.WriteFile(cfg, []byte(cfgText), 0o644); err != nil {
		stopRedis()
		stor.cleanup()
		return nil, err
	}
	s, err := h.launch(ctx, spec, cfg, dir, debugAddr, stor, stopRedis)
	if err != nil {
		return nil, err
	}
	if spec.fleet > 0 {
		if err := h.startFleet(ctx, s, spec, cfg); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// launch starts spec's binary with the config file cfg on a free loopback
// port, logging into dir, and waits until /v2/ answers. The server owns
// stor and stopRedis: its stop ends them. On error both are ended.
func (h *harness) launch(ctx context.Context, spec serverSpec, cfg, dir, debugAddr string, stor *storageRoot, stopRedis func()) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		stopRedis()
		stor.cleanup()
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		stopRedis()
		stor.cleanup()
		return nil, err
	}
	cmd := exec.Command(spec.bin, "serve", cfg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REGISTRY_HTTP_ADDR="+addr, "OTEL_TRACES_EXPORTER=none")
	cmd.Env = append(cmd.Env, stor.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		stopRedis()
		stor.cleanup()
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	s := &server{name: spec.name, addr: addr, cmd: cmd, done: make(chan struct{}), dir: dir, debug: debugAddr, logf: logf, stor: stor, retire: h.retire, stopRedis: stopRedis}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := waitHTTP(ctx, "http://"+addr+"/v2/", s.done, 30*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s did not start: %w\n%s", spec.name, err, tail(filepath.Join(dir, "server.log")))
	}
	return s, nil
}

// base is the server's URL.
func (s *server) base() string { return "http://" + s.addr }

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func (s *server) peakRSS() (int64, error) { return s.status("VmHWM") }

// status reads a size field of /proc/<pid>/status, in bytes.
func (s *server) status(key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", key, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc status", key)
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: the kernel's
// USER_HZ, 100 on every Linux architecture Go runs on.
const userHZ = 100

// cpu is the CPU time (user and system) the process has used so far.
// A fleet's is that of all its instances (not its front's).
func (s *server) cpu() (time.Duration, error) {
	total, err := processCPU(s.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	for _, p := range s.peers {
		c, err := p.cpu()
		if err != nil {
			return 0, err
		}
		total += c
	}
	return total, nil
}

// processCPU is the CPU time process pid has used so far, to the
// nanosecond, its ended threads included: the kernel's CPU clock of the
// process, which clock_gettime reads for another process under the id
// ((^pid) << 3) | 2 (CPUCLOCK_SCHED). /proc/<pid>/stat gives the same time
// in whole ticks of 10 ms, each of user and system time rounded down: on
// a registry that spends 0.13 s in a row (10b), up to 15 % of it.
func processCPU(pid int) (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32((^pid)<<3|2), &ts); err != nil {
		return 0, fmt.Errorf("CPU clock of process %d: %w", pid, err)
	}
	return time.Duration(ts.Nano()), nil
}

// procStat is what the harness reads of /proc/<pid>/stat.
type procStat struct {
	comm string
	ppid int
	// own is the process's CPU time (user and system), reaped that of the
	// children it has waited for.
	own, reaped time.Duration
}

// readStat reads /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces; the fields after
	// it start with the state (field 3). ppid is field 4, utime and stime
	// are fields 14 and 15, cutime and cstime 16 and 17.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("no command name in /proc stat %q", b)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("short /proc stat %q", b)
	}
	var n [5]int64 // ppid, utime, stime, cutime, cstime
	for j, v := range append(f[1:2:2], f[11:15]...) {
		if n[j], err = strconv.ParseInt(v, 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc stat: %w", err)
		}
	}
	tick := func(t int64) time.Duration { return time.Duration(t) * time.Second / userHZ }
	return procStat{comm: string(b[open+1 : end]), ppid: int(n[0]), own: tick(n[1] + n[2]), reaped: tick(n[3] + n[4])}, nil
}

// sampleAnon polls the process's anonymous resident memory (heap, stacks,
// buffers: what grows with load, unlike the mapped executable) until the
// returned function is called, which gives the largest value seen. The
// kernel keeps no peak of it, so it is sampled every 20 ms.
func (s *server) sampleAnon() func() int64 {
	done := make(chan struct{})
	result := make(chan int64)
	go func() {
		var peak int64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := s.status("RssAnon"); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-done:
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-result
	}
}

// stop ends the process group (SIGTERM, then SIGKILL), retires its
// storage and flushes the page cache's dirty data, so that neither the
// writes nor the files one server left behind are paid for by the next
// measurement.
func (s *server) stop() {
	for _, p := range s.peers {
		p.stop()
	}
	s.peers = nil
	if s.front != nil {
		s.front.stop()
		s.front = nil
	}
	stopGroup(s.cmd, s.done)
	s.logf.Close()
	s.stopRedis()
	s.stor.cleanup()
	s.retire(s.dir)
	syscall.Sync()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers below 500, the process exits or
// timeout passes.
func waitHTTP(ctx context.Context, url string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from %s in %s (last error: %v)", url, timeout, err)
		}
	}
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// buildBerth builds ./cmd/berth from the module at root into dir/name, with
// the release build's tags (and extraTags, comma-separated, if any) and
// linker flags, so the binary measured is the one released.
func buildBerth(ctx context.Context, root, dir, name, extraTags string) (string, error) {
	out := filepath.Join(dir, name)
	tags := release.BuildTags
	if extraTags != "" {
		tags += "," + extraTags
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", tags, "-trimpath", "-ldflags", release.LinkFlags, "-o", out, "./cmd/berth")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/berth: %w\n%s", err, b)
	}
	return out, nil
}

// repoRoot finds the module root from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/berth-registry/berth\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the berth module")
		}
		dir = parent
	}
}

// stopGroup ends the process group of cmd, which was started as its
// leader, and waits until done (closed once cmd was waited for): SIGTERM,
// then SIGKILL after 10 s. A group already gone is left alone.
func stopGroup(cmd *exec.Cmd, done <-chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}
