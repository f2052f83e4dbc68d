// Package drivertest is the conformance suite every storage driver runs
// unchanged: the filesystem and inmemory drivers on their own, the object
// store drivers against real servers. It defines, by its assertions, what
// the words in the driver package's documentation mean.
package drivertest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

// Option adjusts the suite to a backend.
type Option func(*suite)

// LargeFileSize sets the size of the file the large-file test streams
// through the driver (300 MiB by default, 16 MiB with -short). A driver
// that keeps files in memory passes something smaller.
func LargeFileSize(n int64) Option { return func(s *suite) { s.large = n } }

// Run runs the whole suite. newDriver builds a driver (wrapped or not; the
// suite wraps it with driver.Wrap). It is called several times per subtest:
// the drivers it returns for one *testing.T must share one backing store,
// as two instances of the server behind a load balancer do, and drivers for
// different tests must not see each other's files.
func Run(t *testing.T, newDriver func(t *testing.T) driver.Driver, opts ...Option) {
	s := &suite{newDriver: newDriver, large: 300 << 20}
	if testing.Short() {
		s.large = 16 << 20
	}
	for _, o := range opts {
		o(s)
	}
	groups := []struct {
		name  string
		tests map[string]func(*testing.T)
	}{
		{"ReadWrite", s.readWriteTests()},
		{"Read", s.readTests()},
		{"Stat", s.statTests()},
		{"List", s.listTests()},
		{"Walk", s.walkTests()},
		{"Move", s.moveTests()},
		{"Delete", s.deleteTests()},
		{"Concurrency", s.concurrencyTests()},
		{"LargeFile", s.largeTests()},
		{"Paths", s.pathTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, name := range slices.Sorted(maps.Keys(g.tests)) {
				t.Run(name, g.tests[name])
			}
		})
	}
}

type suite struct {
	newDriver func(t *testing.T) driver.Driver
	large     int64
}

// driver returns a wrapped driver on the test's backing store.
func (s *suite) driver(t *testing.T) driver.Driver {
	t.Helper()
	return driver.Wrap(s.newDriver(t))
}

// unwrap returns the driver without the wrapper, to see which optional
// interfaces the driver itself implements.
func unwrap(d driver.Driver) driver.Driver {
	if u, ok := d.(interface{ Unwrap() driver.Driver }); ok {
		return u.Unwrap()
	}
	return d
}

func put(t *testing.T, d driver.Driver, path, content string) {
	t.Helper()
	if err := driver.PutContent(t.Context(), d, path, []byte(content)); err != nil {
		t.Fatalf("PutContent(%s): %v", path, err)
	}
}

func get(t *testing.T, d driver.Driver, path string) string {
	t.Helper()
	b, err := driver.GetContent(t.Context(), d, path, 1<<20)
	if err != nil {
		t.Fatalf("GetContent(%s): %v", path, err)
	}
	return string(b)
}

// write streams content to a fresh writer for path and commits it.
func write(t *testing.T, d driver.Driver, path string, chunks ...string) {
	t.Helper()
	ctx := t.Context()
	w, err := d.Writer(ctx, path, false)
	if err != nil {
		t.Fatalf("Writer(%s): %v", path, err)
	}
	for _, c := range chunks {
		if _, err := w.Write([]byte(c)); err != nil {
			t.Fatalf("Write(%s): %v", path, err)
		}
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit(%s): %v", path, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit(%s): %v", path, err)
	}
}

// leave writes content to path and closes the writer without committing.
func leave(t *testing.T, d driver.Driver, path, content string) {
	t.Helper()
	w, err := d.Writer(t.Context(), path, false)
	if err != nil {
		t.Fatalf("Writer(%s): %v", path, err)
	}
	if _, err := w.Write([]byte(content)); err != nil {
		t.Fatalf("Write(%s): %v", path, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close(%s): %v", path, err)
	}
}

func list(t *testing.T, d driver.Driver, dir string) []string {
	t.Helper()
	got, err := d.List(t.Context(), dir)
	if err != nil {
		t.Fatalf("List(%s): %v", dir, err)
	}
	slices.Sort(got)
	return got
}

// wantErr fails unless err is target inside a *driver.PathError that names
// the driver.
func wantErr(t *testing.T, d driver.Driver, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
		return
	}
	var pe *driver.PathError
	if !errors.As(err, &pe) || pe.Driver != d.Name() || pe.Op == "" {
		t.Errorf("%s: error %#v is not a PathError naming the op and driver %q", what, err, d.Name())
	}
}

func wantNotFound(t *testing.T, d driver.Driver, path string) {
	t.Helper()
	_, err := d.Stat(t.Context(), path)
	wantErr(t, d, err, driver.ErrNotFound, "Stat("+path+")")
}

func readAll(ctx context.Context, d driver.Driver, path string, offset int64) ([]byte, error) {
	r, err := d.Reader(ctx, path, offset)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(r)
	return buf.Bytes(), err
}
