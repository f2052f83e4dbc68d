package drivertest

import (
	"slices"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

func (s *suite) deleteTests() map[string]func(*testing.T) {
	return map[string]func(*testing.T){
		"FileAndEmptyParents":      s.testDeleteFile,
		"DirectoryRecursively":     s.testDeleteRecursive,
		"CommonPrefixSiblingsKept": s.testDeleteCommonPrefix,
		"MissingIsNotFound":        s.testDeleteMissing,
		"DirectoryTakesUnfinished": s.testDeleteUnfinished,
	}
}

func (s *suite) testDeleteFile(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/d/a/b/file", "x")
	put(t, d, "/d/keep", "y")
	if err := d.Delete(t.Context(), "/d/a/b/file"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, d, "/d/a/b/file")
	// Emptied directories go too, as on an object store.
	wantNotFound(t, d, "/d/a/b")
	wantNotFound(t, d, "/d/a")
	if got := list(t, d, "/d"); !slices.Equal(got, []string{"/d/keep"}) {
		t.Fatalf("List(/d) = %q, want only /d/keep", got)
	}
}

func (s *suite) testDeleteRecursive(t *testing.T) {
	d := s.driver(t)
	for _, p := range []string{"/r/x/1", "/r/x/y/2", "/r/x/y/z/3", "/r/xy/3", "/r/x0"} {
		put(t, d, p, p)
	}
	if err := d.Delete(t.Context(), "/r/x"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/r/x", "/r/x/1", "/r/x/y", "/r/x/y/z/3"} {
		wantNotFound(t, d, p)
	}
	if got := list(t, d, "/r"); !slices.Equal(got, []string{"/r/x0", "/r/xy"}) {
		t.Fatalf("List(/r) = %q, want /r/x0 and /r/xy", got)
	}
	if got := get(t, d, "/r/xy/3"); got != "/r/xy/3" {
		t.Fatalf("sibling content = %q", got)
	}
}

func (s *suite) testDeleteCommonPrefix(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/p/b", "b")
	put(t, d, "/p/bc", "bc")
	put(t, d, "/p/b.d/e", "e")
	if err := d.Delete(t.Context(), "/p/b"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, d, "/p/b")
	if get(t, d, "/p/bc") != "bc" || get(t, d, "/p/b.d/e") != "e" {
		t.Fatal("siblings sharing a prefix changed")
	}
}

func (s *suite) testDeleteMissing(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/dm/file", "x")
	for _, p := range []string{"/dm/missing", "/dm/fil", "/dm/file/below"} {
		wantErr(t, d, d.Delete(t.Context(), p), driver.ErrNotFound, "Delete("+p+")")
	}
	if get(t, d, "/dm/file") != "x" {
		t.Fatal("a failed Delete changed another file")
	}
}

func (s *suite) testDeleteUnfinished(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/du/upload/startedat", "now")
	leave(t, d, "/du/upload/data", "partial")
	if err := d.Delete(t.Context(), "/du/upload"); err != nil {
		t.Fatal(err)
	}
	_, err := d.Writer(t.Context(), "/du/upload/data", true)
	wantErr(t, d, err, driver.ErrNotFound, "resume below a deleted directory")
	wantNotFound(t, d, "/du")
}
