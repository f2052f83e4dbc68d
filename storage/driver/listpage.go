package driver

import (
	"context"
	"path"
	"slices"
	"strings"
)

// PageLister is implemented by drivers that list one page of a directory,
// starting after a given name, at the cost of that page: an object store
// starts its listing at the key (S3's StartAfter) instead of listing the
// whole prefix to serve a page of it. Use the ListPage function, which
// falls back to List.
type PageLister interface {
	// ListPage returns, as full paths in lexical order of their names, up
	// to n (n > 0) children of dir whose names sort after the name after
	// ("" lists from the first), and whether more follow: whether dir
	// has a child whose name sorts after the last one returned. A missing
	// directory, or a file, gives ErrNotFound, as List does; a directory
	// with no children after after gives an empty list.
	//
	// more lets a caller serving pages of n (a tags list with a Link to
	// the next page) ask for n rather than n+1 names: on an object store
	// whose listings stop at 1 000 keys, a page of 1 001 costs a second
	// listing.
	ListPage(ctx context.Context, dir, after string, n int) (paths []string, more bool, err error)
}

// ListPage lists one page of dir as PageLister defines, with d's own
// ListPage or else with List.
func ListPage(ctx context.Context, d Driver, dir, after string, n int) (paths []string, more bool, err error) {
	if pl, ok := d.(PageLister); ok {
		return pl.ListPage(ctx, dir, after, n)
	}
	return listPage(ctx, d, dir, after, n)
}

func listPage(ctx context.Context, d Driver, dir, after string, n int) ([]string, bool, error) {
	all, err := d.List(ctx, dir)
	if err != nil {
		return nil, false, err
	}
	page, more := firstN(PageOf(all, after, n+1), n)
	return page, more, nil
}

// firstN cuts a page listed one longer than n, to know whether more
// follow, to its first n names.
func firstN(page []string, n int) ([]string, bool) {
	if len(page) > n {
		return page[:n], true
	}
	return page, false
}

// KeyPage ends a PageLister's listing of dir on an object store, which
// keeps no directories: names are the entries listed after after. With
// none, a Stat tells an empty last page from a directory that is not
// there (List's ErrNotFound): one more request, on the last page only.
// It returns the first n of them in lexical order, as paths, and whether
// more follow: more (what the caller knows of keys it did not list), or
// names holds more than n.
func KeyPage(ctx context.Context, d Driver, dir, after string, names []string, n int, more bool) ([]string, bool, error) {
	if len(names) == 0 && dir != "/" {
		fi, err := d.Stat(ctx, dir)
		if err != nil {
			return nil, false, err
		}
		if !fi.IsDir {
			return nil, false, &PathError{Op: "list", Path: dir, Driver: d.Name(), Err: ErrNotFound}
		}
	}
	paths := make([]string, len(names))
	for i, name := range names {
		paths[i] = Join(dir, name)
	}
	page, over := firstN(PageOf(paths, after, n+1), n)
	return page, over || more && len(page) > 0, nil
}

// PageOf sorts paths by name and returns up to n (all when n <= 0) of
// those whose names sort after the name after. It is how a PageLister's
// answer is cut from a longer listing.
func PageOf(paths []string, after string, n int) []string {
	slices.SortFunc(paths, func(a, b string) int { return strings.Compare(path.Base(a), path.Base(b)) })
	i, _ := slices.BinarySearchFunc(paths, after, func(p, name string) int {
		if path.Base(p) <= name {
			return -1
		}
		return 1
	})
	paths = paths[i:]
	if n > 0 && len(paths) > n {
		paths = paths[:n]
	}
	return slices.Clip(paths)
}

// MaxListKeys is the most keys an object store (S3, GCS) returns for one
// listing request.
const MaxListKeys = 1000

// NextListSize is how many keys a PageLister over an object store asks for
// in its next listing request of a page of n, holding have names from the
// requests before, the last of which asked for prev. It asks for what is
// still missing, so that the 1 001 names a driver lists for a page of
// 1 000 (one more to know whether more follow) cost one request of 1 000
// keys and one of 1, not two of 1 000: on MinIO the second request cost
// as much as the first. Once the page holds n names but their order is
// not yet known (KeyPageComplete), it asks for a few more, doubling.
func NextListSize(n, have, prev int) int {
	if short := n - have; short > 0 {
		return min(short, MaxListKeys)
	}
	return min(max(2*prev, 16), MaxListKeys)
}

// KeyPageComplete is for a PageLister over a store that lists keys in
// byte order, where a child directory's keys carry a "/" after its name:
// a name then comes after every name it is a prefix of followed by a byte
// below "/" ("v1/…" after "v1-rc/…" and "v1.2/…", though v1 sorts first).
// Given the names listed so far (those after after), the key prefix of
// the directory and the greatest key listed, it tells whether the first n
// names in lexical order are all among them: every key still to come sorts
// after last, so only a shorter name of a listed one could still rank
// among the first n, and only while its keys were not yet passed.
func KeyPageComplete(names []string, n int, prefix, after, last string) bool {
	if len(names) < n {
		return false
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	cutoff := sorted[n-1]
	for _, x := range names {
		for i := 1; i < len(x); i++ {
			if x[i] >= '/' {
				continue
			}
			if y := x[:i]; y > after && y < cutoff && prefix+y+"/" > last {
				return false
			}
		}
	}
	return true
}
