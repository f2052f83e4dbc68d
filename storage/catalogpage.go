package storage

import (
	"context"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/berth-registry/berth/storage/driver"
)

// On an object store a walk of repositories/ is a listing of every key
// below it (every layer link, revision and tag of every repository) for
// each page of the catalog. catalogPage instead goes down the tree one
// directory at a time from last, with one listing per directory it needs,
// several at a time, and stops when the page is full: its cost follows the
// page, not the registry.
//
// Names come out in string order, where "/" is a character like another:
// "team-x" sorts before "team/app". In one directory, a child c's own name
// sorts at c and the names below it at "c/", a range no sibling name can
// fall in; so the walk emits a child's name at its place among its
// siblings and holds its subtree back until the siblings sorting before
// "c/" are out.

// catalogParallel is how many directory listings a catalog page runs at a
// time.
const catalogParallel = 16

// catalogPageSize is how many children of one directory are listed in one
// go while filling a page.
const catalogPageSize = 1000

type catalogWalk struct {
	drv  driver.Driver
	n    int
	last string
	out  []string
}

// catalogPage returns up to n repository names after last, in string order.
func (r *Registry) catalogPage(ctx context.Context, n int, last string) ([]string, error) {
	w := &catalogWalk{drv: r.driver, n: n, last: last}
	var below []string
	if last != "" {
		below = strings.Split(last, "/")
	}
	if err := w.dir(ctx, "", below); err != nil && !isNotFound(err) {
		return nil, wrapDriverErr("catalog", err)
	}
	if w.out == nil {
		w.out = []string{}
	}
	return w.out, nil
}

func (w *catalogWalk) full() bool { return len(w.out) >= w.n }

// subtree is a child directory whose names are still to come, at key.
type subtree struct {
	key   string // the child's name and "/"
	rel   string // its name below repositories/
	below []string
}

// dir emits the repositories below repositories/rel. below is what of
// last lies under rel: the walk skips the children that sort before it.
func (w *catalogWalk) dir(ctx context.Context, rel string, below []string) error {
	var pending []subtree
	after := ""
	if len(below) > 0 {
		lc := below[0]
		after = lc
		// Only a name a directory can have has a subtree to look in.
		if lc != "" && driver.ValidPath("/"+lc) {
			pending = append(pending, subtree{key: lc + "/", rel: join(rel, lc), below: below[1:]})
		}
		// A child that is lc cut before a "-" or "." sorts before lc, but
		// the names below it ("a/x" against "a-b") after it.
		for k := 1; k < len(lc); k++ {
			if lc[k] < '/' && driver.ValidPath("/"+lc[:k]) {
				pending = append(pending, subtree{key: lc[:k] + "/", rel: join(rel, lc[:k])})
			}
		}
		slices.SortFunc(pending, func(a, b subtree) int { return strings.Compare(a.key, b.key) })
	}
	// flush walks the held-back subtrees whose names sort before key.
	flush := func(key string) error {
		for len(pending) > 0 && !w.full() && (key == "" || pending[0].key < key) {
			s := pending[0]
			pending = pending[1:]
			if err := w.dir(ctx, s.rel, s.below); err != nil && !isNotFound(err) {
				return err
			}
		}
		return nil
	}
	for !w.full() {
		size := w.batch(catalogPageSize)
		page, more, err := driver.ListPage(ctx, w.drv, repoDir(rel), after, size)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		after = path.Base(page[len(page)-1])
		for rest := page; len(rest) > 0; {
			batch := rest[:min(len(rest), w.batch(len(rest)))]
			rest = rest[len(batch):]
			kids, err := w.look(ctx, rel, batch)
			if err != nil {
				return err
			}
			for _, k := range kids {
				if err := flush(k.name); err != nil {
					return err
				}
				if w.full() {
					return nil
				}
				name := join(rel, k.name)
				if k.repo && name > w.last {
					w.out = append(w.out, name)
				}
				if k.subdirs {
					s := subtree{key: k.name + "/", rel: name}
					i, _ := slices.BinarySearchFunc(pending, s.key, func(p subtree, key string) int { return strings.Compare(p.key, key) })
					pending = slices.Insert(pending, i, s)
				}
			}
		}
		if !more {
			break
		}
	}
	return flush("")
}

// batch is how many children to list (or look into) next, at most limit:
// as many as names are still missing, and at least a round of parallel
// listings. The API asks for a page of n+1 to know whether a next page
// follows; looking into 1 000 more directories for that one name doubled
// the cost of each page of 1 000.
func (w *catalogWalk) batch(limit int) int {
	return min(limit, w.n-len(w.out)+catalogParallel)
}

// child is what one listing of a directory told of it.
type child struct {
	name    string
	repo    bool // holds _manifests, _layers or a session in _uploads
	subdirs bool // holds something else, which may hold repositories
}

// look lists each directory of page (children of repositories/rel), a few
// at a time. Names starting with "_" are a repository's own, not
// repositories.
func (w *catalogWalk) look(ctx context.Context, rel string, page []string) ([]child, error) {
	kids := make([]child, 0, len(page))
	for _, p := range page {
		if name := path.Base(p); !strings.HasPrefix(name, "_") {
			kids = append(kids, child{name: name})
		}
	}
	errs := make([]error, len(kids))
	sem := make(chan struct{}, catalogParallel)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := join(rel, kids[i].name)
			entries, err := w.drv.List(ctx, repoDir(name))
			if err != nil {
				if !isNotFound(err) { // a file, or gone meanwhile
					errs[i] = err
				}
				return
			}
			for _, e := range entries {
				if !strings.HasPrefix(path.Base(e), "_") {
					kids[i].subdirs = true
				}
			}
			kids[i].repo, err = markersSay(ctx, w.drv, name, entries)
			if err != nil {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return kids, nil
}

func join(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

func repoDir(rel string) string {
	if rel == "" {
		return repositoriesRoot
	}
	return repositoriesRoot + "/" + rel
}
