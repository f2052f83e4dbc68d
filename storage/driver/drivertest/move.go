package drivertest

import (
	"slices"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

func (s *suite) moveTests() map[string]func(*testing.T) {
	return map[string]func(*testing.T){
		"CreatesParentsAndRemovesSource": s.testMove,
		"ReplacesDestination":            s.testMoveOverwrites,
		"MissingSourceIsNotFound":        s.testMoveMissing,
	}
}

func (s *suite) testMove(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/m/src/file", "payload")
	put(t, d, "/keep", "x")
	if err := d.Move(t.Context(), "/m/src/file", "/n/deep/er/dst"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "/n/deep/er/dst"); got != "payload" {
		t.Fatalf("moved content = %q", got)
	}
	wantNotFound(t, d, "/m/src/file")
	// Directories exist only while they hold a file, as on an object store.
	wantNotFound(t, d, "/m")
	if got := list(t, d, "/"); !slices.Equal(got, []string{"/keep", "/n"}) {
		t.Fatalf("List(/) after Move = %q", got)
	}
}

func (s *suite) testMoveOverwrites(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/mo/src", "new")
	put(t, d, "/mo/dst", "old and longer")
	if err := d.Move(t.Context(), "/mo/src", "/mo/dst"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "/mo/dst"); got != "new" {
		t.Fatalf("content = %q, want new", got)
	}
	wantNotFound(t, d, "/mo/src")
	if got := list(t, d, "/mo"); !slices.Equal(got, []string{"/mo/dst"}) {
		t.Fatalf("List(/mo) = %q", got)
	}
}

func (s *suite) testMoveMissing(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/mm/dst", "untouched")
	err := d.Move(t.Context(), "/mm/src", "/mm/dst")
	wantErr(t, d, err, driver.ErrNotFound, "Move of a missing file")
	if got := get(t, d, "/mm/dst"); got != "untouched" {
		t.Fatalf("destination changed to %q", got)
	}
}
