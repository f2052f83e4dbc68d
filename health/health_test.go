package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/health"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	_ "github.com/berth-registry/berth/storage/driver/filesystem"
	_ "github.com/berth-registry/berth/storage/driver/inmemory"
)

// switchable is a check whose result the test sets.
type switchable struct{ fail atomic.Bool }

func (s *switchable) check(context.Context) error {
	if s.fail.Load() {
		return errors.New("down")
	}
	return nil
}

func TestThresholdCountsConsecutiveFailures(t *testing.T) {
	tests := []struct {
		threshold int
		runs      []bool // true: the run fails
		failing   bool
	}{
		{0, nil, false},
		{0, []bool{true}, true},
		{1, []bool{true}, true},
		{3, []bool{true, true}, false},
		{3, []bool{true, true, true}, true},
		{3, []bool{true, true, false, true, true}, false},
		{3, []bool{true, true, true, false}, false},
		{2, []bool{true, true, true, true, false, true}, false},
	}
	for _, tt := range tests {
		c := health.New(nil)
		var s switchable
		c.Add("x", 0, tt.threshold, s.check)
		for _, fail := range tt.runs {
			s.fail.Store(fail)
			c.RunOnce(context.Background())
		}
		if got := c.Err() != nil; got != tt.failing {
			t.Errorf("threshold %d, runs %v: failing = %v, want %v", tt.threshold, tt.runs, got, tt.failing)
		}
	}
}

func TestStatusHandlerReportsFailingChecks(t *testing.T) {
	c := health.New(nil)
	var a, b switchable
	c.Add("a", 0, 0, a.check)
	c.Add("b", 0, 0, b.check)
	b.fail.Store(true)
	c.RunOnce(context.Background())

	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/health", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["b"] != "down" {
		t.Fatalf("body %v, want only b: down", got)
	}

	b.fail.Store(false)
	c.RunOnce(context.Background())
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/health", nil))
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "{}" {
		t.Fatalf("healthy: %d %q, want 200 {}", rec.Code, rec.Body.String())
	}
}

// flaky makes a driver's writes fail while fail is set.
type flaky struct {
	driver.Driver
	fail *atomic.Bool
}

func (f flaky) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	if f.fail.Load() {
		return nil, errors.New("disk full")
	}
	return f.Driver.Writer(ctx, path, append)
}

func TestStorageCheckFailsWhileWritesFail(t *testing.T) {
	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	c := health.New(nil)
	c.Add("storagedriver_inmemory", 0, 2, health.StorageDriver(driver.Wrap(flaky{d, &fail}), false))
	ctx := context.Background()

	c.RunOnce(ctx)
	if err := c.Err(); err != nil {
		t.Fatalf("healthy driver: %v", err)
	}
	fail.Store(true)
	c.RunOnce(ctx)
	if err := c.Err(); err != nil {
		t.Fatalf("failed once under threshold 2: %v", err)
	}
	c.RunOnce(ctx)
	if st := c.Status(); !strings.Contains(st["storagedriver_inmemory"], "disk full") {
		t.Fatalf("status %v, want the write error", st)
	}
	fail.Store(false)
	c.RunOnce(ctx)
	if err := c.Err(); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	// The probe leaves nothing behind.
	if _, err := d.Stat(ctx, "/_berth/health"); err == nil {
		names, _ := d.List(ctx, "/_berth/health")
		if len(names) > 0 {
			t.Fatalf("probe files left: %v", names)
		}
	}
}

func TestReadOnlyStorageCheckOnlyReads(t *testing.T) {
	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	fail.Store(true)
	c := health.New(nil)
	c.Add("storage", 0, 0, health.StorageDriver(driver.Wrap(flaky{d, &fail}), true))
	c.RunOnce(context.Background())
	if err := c.Err(); err != nil {
		t.Fatalf("read-only check wrote: %v", err)
	}
}

// TestStorageCheckFollowsTheFilesystemRoot keeps the probe's directory
// between runs, and breaks a real filesystem root by putting a file where
// the directory was, which fails writes even for root (chmod would not),
// then restores it.
func TestStorageCheckFollowsTheFilesystemRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "registry")
	d, err := driver.Open(context.Background(), "filesystem", driver.Params{"rootdirectory": root})
	if err != nil {
		t.Fatal(err)
	}
	c := health.New(nil)
	c.Add("storagedriver_filesystem", 0, 0, health.StorageDriver(d, false))
	ctx := context.Background()

	c.RunOnce(ctx)
	if err := c.Err(); err != nil {
		t.Fatalf("fresh root: %v", err)
	}
	// The probe's directory stays for the next run, empty.
	if names, err := os.ReadDir(filepath.Join(root, "_berth", "health")); err != nil || len(names) > 0 {
		t.Fatalf("probe directory after a run: %v, %v; want it kept empty", names, err)
	}
	aside := root + ".aside"
	if err := os.Rename(root, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.RunOnce(ctx)
	if err := c.Err(); err == nil {
		t.Fatal("check passes with the root replaced by a file")
	}
	if err := os.Remove(root); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, root); err != nil {
		t.Fatal(err)
	}
	c.RunOnce(ctx)
	if err := c.Err(); err != nil {
		t.Fatalf("restored root: %v", err)
	}
}

func TestBaseAnswers503WhileAHealthCheckFails(t *testing.T) {
	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	c := health.New(nil)
	c.Add("storagedriver_inmemory", 0, 0, health.StorageDriver(driver.Wrap(flaky{d, &fail}), false))
	reg := storage.New(d, storage.Options{}, nil)
	srv := httptest.NewServer(registry.New(reg, registry.Options{Health: c.Err}, nil))
	t.Cleanup(srv.Close)

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Errors []struct{ Code string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		code := ""
		if len(body.Errors) > 0 {
			code = body.Errors[0].Code
		}
		return resp.StatusCode, code
	}

	c.RunOnce(context.Background())
	if st, _ := get("/v2/"); st != http.StatusOK {
		t.Fatalf("healthy /v2/: %d", st)
	}
	fail.Store(true)
	c.RunOnce(context.Background())
	if st, code := get("/v2/"); st != http.StatusServiceUnavailable || code != "UNAVAILABLE" {
		t.Fatalf("failing /v2/: %d %s, want 503 UNAVAILABLE", st, code)
	}
	// Only the base answers 503: reads that still work keep working.
	if st, _ := get("/v2/_catalog"); st != http.StatusOK {
		t.Fatalf("failing catalog: %d", st)
	}
	fail.Store(false)
	c.RunOnce(context.Background())
	if st, _ := get("/v2/"); st != http.StatusOK {
		t.Fatalf("recovered /v2/: %d", st)
	}
}

func TestFileCheckFailsWhileTheFileExists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "down")
	check := health.File(path)
	if err := check(context.Background()); err != nil {
		t.Fatalf("no file: %v", err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := check(context.Background()); err == nil || err.Error() != "file exists" {
		t.Fatalf("file present: %v, want file exists", err)
	}
}

func TestHTTPCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if r.Header.Get("X-Probe") != "yes" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	probe := http.Header{"X-Probe": {"yes"}}
	tests := []struct {
		name    string
		status  int
		headers http.Header
		wantErr bool
	}{
		{"expected status", http.StatusNoContent, probe, false},
		{"default 200 not met", 0, probe, true},
		{"headers sent", http.StatusForbidden, nil, false},
		{"wrong status", http.StatusOK, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := health.HTTP(srv.URL, tt.status, 0, tt.headers)(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if err := health.HTTP(closed.URL, 0, 0, nil)(context.Background()); err == nil {
		t.Fatal("check of a closed server passed")
	}
}

func TestTCPCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := health.TCP(addr, 0)(context.Background()); err != nil {
		t.Fatalf("open port: %v", err)
	}
	ln.Close()
	if err := health.TCP(addr, 0)(context.Background()); err == nil {
		t.Fatal("closed port passed")
	}
}

func TestStartRunsChecksRepeatedly(t *testing.T) {
	calls := make(chan struct{})
	c := health.New(nil)
	c.Add("x", time.Millisecond, 0, func(ctx context.Context) error {
		select {
		case calls <- struct{}{}:
		case <-ctx.Done():
		}
		return errors.New("down")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	<-calls
	<-calls // the second run starts after the first one's result is kept
	if err := c.Err(); !errors.Is(err, health.ErrUnhealthy) || !strings.Contains(err.Error(), "x") {
		t.Fatalf("Err = %v, want the failing check named", err)
	}
}

// TestAdvisoryCheckReportsWithoutTakingTheRegistryOut: a dependency the
// registry degrades without (the shared cache) shows in /debug/health but
// leaves Err, which /v2/ asks, nil.
func TestAdvisoryCheckReportsWithoutTakingTheRegistryOut(t *testing.T) {
	c := health.New(nil)
	var s switchable
	c.AddAdvisory("redis", 0, 0, s.check)
	s.fail.Store(true)
	c.RunOnce(context.Background())
	if err := c.Err(); err != nil {
		t.Errorf("Err = %v with only an advisory check failing", err)
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/health", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"redis":"down"`) {
		t.Errorf("/debug/health: %d %s, want 503 naming redis", rec.Code, rec.Body.String())
	}
}

// TestCheckAddedAfterStartRuns: the shared cache's check is added once
// the checker runs.
func TestCheckAddedAfterStartRuns(t *testing.T) {
	c := health.New(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	ran := make(chan struct{}, 1)
	c.Add("late", time.Hour, 0, func(context.Context) error {
		select {
		case ran <- struct{}{}:
		default:
		}
		return nil
	})
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("a check added after Start never ran")
	}
}
