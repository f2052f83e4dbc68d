package drivertest

import (
	"errors"
	"slices"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

func (s *suite) walkTests() map[string]func(*testing.T) {
	tests := map[string]func(*testing.T){}
	// Every case runs through the driver's own Walker (if it has one) and
	// through the List-based fallback, which must agree.
	for mode, wrap := range map[string]func(driver.Driver) driver.Driver{
		"Native":   func(d driver.Driver) driver.Driver { return d },
		"Fallback": func(d driver.Driver) driver.Driver { return driver.Wrap(listOnly{unwrap(d)}) },
	} {
		tests[mode+"/ParentsFirstSiblingsInOrder"] = func(t *testing.T) { s.testWalkOrder(t, wrap(s.driver(t))) }
		tests[mode+"/SkipDir"] = func(t *testing.T) { s.testWalkSkipDir(t, wrap(s.driver(t))) }
		tests[mode+"/StopsOnError"] = func(t *testing.T) { s.testWalkStop(t, wrap(s.driver(t))) }
		tests[mode+"/MissingRootIsNotFound"] = func(t *testing.T) { s.testWalkMissing(t, wrap(s.driver(t))) }
	}
	return tests
}

// listOnly hides every optional interface of a driver.
type listOnly struct{ driver.Driver }

var walkTree = []string{"/w/b/y", "/w/a0", "/w/c/d/e", "/w/b/x", "/w/a", "/w/b/z/q", "/x"}

func walk(t *testing.T, d driver.Driver, root string, fn func(driver.FileInfo) error) ([]driver.FileInfo, error) {
	t.Helper()
	var seen []driver.FileInfo
	err := driver.Walk(t.Context(), d, root, func(fi driver.FileInfo) error {
		seen = append(seen, fi)
		return fn(fi)
	})
	return seen, err
}

func paths(fis []driver.FileInfo) []string {
	out := make([]string, len(fis))
	for i, fi := range fis {
		out[i] = fi.Path
	}
	return out
}

func (s *suite) testWalkOrder(t *testing.T, d driver.Driver) {
	for _, p := range walkTree {
		put(t, d, p, p+"!")
	}
	seen, err := walk(t, d, "/w", func(driver.FileInfo) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/w/a", "/w/a0", "/w/b", "/w/b/x", "/w/b/y", "/w/b/z", "/w/b/z/q", "/w/c", "/w/c/d", "/w/c/d/e"}
	if got := paths(seen); !slices.Equal(got, want) {
		t.Fatalf("Walk(/w) visited %q, want %q", got, want)
	}
	for _, fi := range seen {
		isDir := slices.Contains([]string{"/w/b", "/w/b/z", "/w/c", "/w/c/d"}, fi.Path)
		if fi.IsDir != isDir {
			t.Errorf("%s: IsDir = %v, want %v", fi.Path, fi.IsDir, isDir)
		}
		if !isDir && fi.Size != int64(len(fi.Path)+1) {
			t.Errorf("%s: Size = %d, want %d", fi.Path, fi.Size, len(fi.Path)+1)
		}
	}
	seen, err = walk(t, d, "/", func(driver.FileInfo) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(seen); len(got) != len(want)+2 || got[0] != "/w" || got[len(got)-1] != "/x" {
		t.Fatalf("Walk(/) visited %q, want /w, everything below it, then /x", got)
	}
}

func (s *suite) testWalkSkipDir(t *testing.T, d driver.Driver) {
	for _, p := range walkTree {
		put(t, d, p, "x")
	}
	seen, err := walk(t, d, "/w", func(fi driver.FileInfo) error {
		if fi.Path == "/w/b" || fi.Path == "/w/c/d" {
			return driver.ErrSkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk returned %v; ErrSkipDir must not end the walk", err)
	}
	want := []string{"/w/a", "/w/a0", "/w/b", "/w/c", "/w/c/d"}
	if got := paths(seen); !slices.Equal(got, want) {
		t.Fatalf("Walk with skips visited %q, want %q", got, want)
	}
}

func (s *suite) testWalkStop(t *testing.T, d driver.Driver) {
	for _, p := range walkTree {
		put(t, d, p, "x")
	}
	stop := errors.New("stop here")
	seen, err := walk(t, d, "/w", func(fi driver.FileInfo) error {
		if fi.Path == "/w/b/x" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Walk = %v, want the callback's error", err)
	}
	if got := paths(seen); got[len(got)-1] != "/w/b/x" {
		t.Fatalf("Walk went on after the error: %q", got)
	}
}

func (s *suite) testWalkMissing(t *testing.T, d driver.Driver) {
	put(t, d, "/wm/file", "x")
	for _, root := range []string{"/wm/missing", "/wm/file"} {
		_, err := walk(t, d, root, func(driver.FileInfo) error { return nil })
		wantErr(t, d, err, driver.ErrNotFound, "Walk("+root+")")
	}
}
