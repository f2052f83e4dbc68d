package drivertest

import (
	"errors"
	"slices"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

func (s *suite) listTests() map[string]func(*testing.T) {
	return map[string]func(*testing.T){
		"DirectChildrenAsFullPaths": s.testListChildren,
		"MissingOrFileIsNotFound":   s.testListMissing,
		"UnfinishedWritesInvisible": s.testListHidesUnfinished,
		"PageOver1000Entries":       s.testListPageOver1000,
		"PageInLexicalOrder":        s.testListPageLexical,
		"PageOfMissingIsNotFound":   s.testListPageMissing,
	}
}

func (s *suite) testListChildren(t *testing.T) {
	d := s.driver(t)
	for _, p := range []string{"/l/a", "/l/b/c", "/l/b/d/e", "/l/bc", "/other"} {
		put(t, d, p, p)
	}
	for dir, want := range map[string][]string{
		"/l":     {"/l/a", "/l/b", "/l/bc"},
		"/l/b":   {"/l/b/c", "/l/b/d"},
		"/l/b/d": {"/l/b/d/e"},
		"/":      {"/l", "/other"},
	} {
		if got := list(t, d, dir); !slices.Equal(got, want) {
			t.Errorf("List(%s) = %q, want %q", dir, got, want)
		}
	}
}

func (s *suite) testListMissing(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/lm/file", "x")
	for _, p := range []string{"/lm/missing", "/lm/file", "/l"} {
		_, err := d.List(t.Context(), p)
		wantErr(t, d, err, driver.ErrNotFound, "List("+p+")")
	}
}

func (s *suite) testListHidesUnfinished(t *testing.T) {
	d := s.driver(t)
	ctx := t.Context()
	put(t, d, "/u/v/other", "x")
	leave(t, d, "/u/v/file", "unfinished")
	leave(t, d, "/u/w/file", "unfinished")
	w, err := d.Writer(ctx, "/u/v/open", false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel(ctx)
	if _, err := w.Write([]byte("open")); err != nil {
		t.Fatal(err)
	}

	if got := list(t, d, "/u/v"); !slices.Equal(got, []string{"/u/v/other"}) {
		t.Errorf("List(/u/v) = %q, want only the committed file", got)
	}
	// A directory holding only an unfinished write may exist (a filesystem)
	// or not (an object store), but must show no file.
	got, err := d.List(ctx, "/u/w")
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("List(/u/w) = %q, want nothing", got)
	}
	for _, p := range []string{"/u/v/file", "/u/v/open", "/u/w/file"} {
		wantNotFound(t, d, p)
	}
	err = driver.Walk(ctx, d, "/u", func(fi driver.FileInfo) error {
		if !fi.IsDir && fi.Path != "/u/v/other" {
			t.Errorf("Walk shows %s", fi.Path)
		}
		if !driver.ValidPath(fi.Path) {
			t.Errorf("Walk shows an invalid path %q", fi.Path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
