package drivertest

import (
	"fmt"
	"path"
	"slices"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

// pageAll lists dir page by page, n at a time, each page after the last
// name of the one before, until one says that no more follow, and returns
// every name. A page that says more follow is full; after one that says
// none do, the next is empty.
func pageAll(t *testing.T, d driver.Driver, dir string, n int) []string {
	t.Helper()
	var names []string
	after := ""
	for range 10000 {
		page, more, err := driver.ListPage(t.Context(), d, dir, after, n)
		if err != nil {
			t.Fatalf("ListPage(%s, %q, %d): %v", dir, after, n, err)
		}
		if len(page) > n || (more && len(page) != n) {
			t.Fatalf("ListPage(%s, %q, %d) gave %d entries, more %v", dir, after, n, len(page), more)
		}
		for _, p := range page {
			if path.Dir(p) != dir {
				t.Fatalf("ListPage(%s) gave %s, not a child", dir, p)
			}
			names = append(names, path.Base(p))
		}
		if !more {
			if len(names) > 0 {
				next, more, err := driver.ListPage(t.Context(), d, dir, names[len(names)-1], n)
				if err != nil || len(next) != 0 || more {
					t.Fatalf("ListPage(%s, %q, %d) said no more follow, but the next page is %q, more %v, %v", dir, after, n, next, more, err)
				}
			}
			return names
		}
		after = names[len(names)-1]
	}
	t.Fatalf("ListPage(%s) never ended", dir)
	return nil
}

// checkPage asks for one page of n after after, and checks it against
// want, every name in dir in lexical order: the names and whether more
// follow.
func checkPage(t *testing.T, d driver.Driver, dir string, want []string, after string, n int) {
	t.Helper()
	page, more, err := driver.ListPage(t.Context(), d, dir, after, n)
	if err != nil {
		t.Fatalf("ListPage(%s) after %q: %v", dir, after, err)
	}
	CheckPage(t, dir, after, n, want, page, more)
}

// CheckPage checks a page that ListPage(dir, after, n) gave, paths and
// whether more follow, against names, every name in dir in lexical order,
// and reports whether it is right. Drivers' own tests of ListPage, which
// count what a page costs, check it here too.
func CheckPage(t testing.TB, dir, after string, n int, names, page []string, more bool) bool {
	t.Helper()
	i, found := slices.BinarySearch(names, after)
	if found {
		i++
	}
	want, wantMore := names[i:min(i+n, len(names))], i+n < len(names)
	var got []string
	for _, p := range page {
		got = append(got, path.Base(p))
	}
	if !slices.Equal(got, want) || more != wantMore {
		t.Errorf("ListPage(%s) after %q, n %d: %d names, more %v; want %d, more %v (%s)", dir, after, n, len(got), more, len(want), wantMore, FirstDifference(got, want))
		return false
	}
	return true
}

// FirstDifference says where got first differs from want, for a message
// about lists too long to print.
func FirstDifference(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: %q, want %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}

// testListPageOver1000 pages through more entries than an object store
// lists in one request, in pages that straddle its pages. The first name,
// "t", is a directory whose keys ("t/…") a store lists after every other
// one ("t.0000/…"): a page that stopped at its first n keys would miss it.
func (s *suite) testListPageOver1000(t *testing.T) {
	d := s.driver(t)
	const count = 1050
	want := []string{"t"}
	for i := range count {
		want = append(want, fmt.Sprintf("t.%04d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(want))
	sem := make(chan struct{}, 16)
	for _, name := range want {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := driver.PutContent(t.Context(), d, "/pg/"+name+"/current/link", []byte(name)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// 1001 is what the API asks for to serve a page of 1 000 (one more
	// tells whether a next page follows): the store's first listing stops
	// one short.
	for _, n := range []int{1000, 1001, 333} {
		if got := pageAll(t, d, "/pg", n); !slices.Equal(got, want) {
			t.Errorf("pages of %d: %d names, want %d in order (first differences: %v)", n, len(got), len(want), firstDiff(got, want))
		}
	}
	// Single pages, from the start and after names that exist or not.
	for _, tc := range []struct {
		after string
		n     int
	}{
		{"", 1}, {"", 2}, {"t", 2}, {"s", 1}, {"t.", 1}, {"t.0999", 2}, {"t.0999x", 2},
		{"t.1047", 2}, {"t.1048", 1}, {"t.1049", 5}, {"t0", 5},
		// Pages of 1 000 and 1 001 after a name: more than one listing
		// of an object store holds.
		{"t", 1000}, {"t.0010", 1000}, {"t.0048", 1001}, {"t.0049", 1000}, {"t.0050", 1000},
	} {
		checkPage(t, d, "/pg", want, tc.after, tc.n)
	}
}

// testListPageLexical: names that are prefixes of others followed by "-"
// or "." sort before them, though an object store's keys ("v1/…" after
// "v1-rc/…") do not; files and directories mix.
func (s *suite) testListPageLexical(t *testing.T) {
	d := s.driver(t)
	dirs := []string{"v1", "v1-rc", "v1-rc.2", "v1.2", "v1.2.3", "v10", "v1_x", "a", "a-b", "a.c", "a0", "ab", "z"}
	files := []string{"v1-file", "a-file"}
	for _, n := range dirs {
		put(t, d, "/lx/"+n+"/current/link", n)
	}
	for _, n := range files {
		put(t, d, "/lx/"+n, n)
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(dirs), files...)))
	for _, n := range []int{1, 2, 3, 100} {
		if got := pageAll(t, d, "/lx", n); !slices.Equal(got, want) {
			t.Errorf("pages of %d: %q, want %q", n, got, want)
		}
	}
	// Names that exist, and names that do not but share a prefix with
	// some that do.
	for _, after := range []string{"v1", "a", "v1-rc", "b", "zz", "v1-", "v1-rc.1", "v1.", "v1.2.3.4", "a-a", "a.", "u", "v0", "v1.2.3", "v1_x", "z"} {
		for _, n := range []int{1, 2, 3} {
			checkPage(t, d, "/lx", want, after, n)
		}
	}
}

func (s *suite) testListPageMissing(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/lpm/file", "x")
	for _, tc := range []struct{ dir, after string }{{"/lpm/missing", ""}, {"/lpm/missing", "a"}, {"/lpm/file", ""}, {"/lpm/file", "a"}} {
		_, _, err := driver.ListPage(t.Context(), d, tc.dir, tc.after, 10)
		wantErr(t, d, err, driver.ErrNotFound, fmt.Sprintf("ListPage(%s, %q)", tc.dir, tc.after))
	}
	if page, more, err := driver.ListPage(t.Context(), d, "/lpm", "file", 10); err != nil || len(page) != 0 || more {
		t.Errorf("ListPage after the last name = %q, more %v, %v; want an empty page", page, more, err)
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: %q, want %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}
