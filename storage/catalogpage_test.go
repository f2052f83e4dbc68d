package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
)

// TestCatalogPageMatchesTheWholeSortedList: pages of every size from every
// position give the names a whole sorted listing gives, among names where
// "/" and "-" or "." compete ("a-b" before "a/b"), nested repositories and
// directories that are not repositories.
func TestCatalogPageMatchesTheWholeSortedList(t *testing.T) {
	ctx := context.Background()
	reg := New(inmemory.New(), Options{}, nil)
	names := []string{"a", "a-b", "a.c", "a/b", "a/b/c", "a/b-c", "a0", "ab", "b/x/y", "b-x/y", "b.x", "c/d/e/f", "c/d-e", "team/app", "team-x", "z"}
	for _, name := range names {
		pushBlob(t, reg.Repository(name), []byte("x"))
	}
	all := slices.Sorted(slices.Values(names))
	for _, last := range append([]string{"", "a/", "b/x", "c", "c/d", "zz", "a-a", "b-x/y/z", "a//b", "A", "a/../z", "~"}, all...) {
		i, _ := slices.BinarySearch(all, last)
		for i < len(all) && all[i] <= last {
			i++
		}
		for _, n := range []int{1, 2, 3, 5, 100} {
			want := all[i:min(i+n, len(all))]
			got, err := reg.catalogPage(ctx, n, last)
			if err != nil {
				t.Fatalf("catalogPage(%d, %q): %v", n, last, err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("catalogPage(%d, %q) = %q, want %q", n, last, got, want)
			}
		}
	}
}

// listCounter counts the listings of directories below one path.
type listCounter struct {
	driver.Driver
	below string
	lists atomic.Int64
}

func (c *listCounter) List(ctx context.Context, dir string) ([]string, error) {
	if strings.HasPrefix(dir, c.below) {
		c.lists.Add(1)
	}
	return c.Driver.List(ctx, dir)
}

// TestCatalogPageLooksIntoWhatThePageNeeds: the API asks for a page of
// 1 001 to serve 1 000 and know whether more follow. Looking into 1 000
// more repository directories for the 1 001st name doubled the cost of a
// page on an object store, where each look is a request.
func TestCatalogPageLooksIntoWhatThePageNeeds(t *testing.T) {
	ctx := context.Background()
	mem := inmemory.New()
	const count, n = 2100, 1001
	var all []string
	for i := range count {
		name := fmt.Sprintf("bench/r%05d", i)
		all = append(all, name)
		link := repositoriesRoot + "/" + name + "/_layers/sha256/" + strings.Repeat("a", 64) + "/link"
		if err := driver.PutContent(ctx, mem, link, []byte("sha256:"+strings.Repeat("a", 64))); err != nil {
			t.Fatal(err)
		}
	}
	counter := &listCounter{Driver: mem, below: repositoriesRoot + "/bench/"}
	reg := New(counter, Options{}, nil)
	for _, last := range []string{"", all[999]} {
		counter.lists.Store(0)
		got, err := reg.catalogPage(ctx, n, last)
		if err != nil {
			t.Fatalf("catalogPage(%d, %q): %v", n, last, err)
		}
		i, _ := slices.BinarySearch(all, last)
		if last != "" {
			i++
		}
		if want := all[i : i+n]; !slices.Equal(got, want) {
			t.Fatalf("catalogPage(%d, %q): %d names from %q, want %d from %q", n, last, len(got), got[0], len(want), want[0])
		}
		if looked, most := counter.lists.Load(), int64(n+catalogParallel+1); looked > most {
			t.Errorf("catalogPage(%d, %q) listed %d directories below bench/, want at most %d", n, last, looked, most)
		}
	}
}
