package storage

import (
	"context"
	"path"
	"strings"

	"github.com/berth-registry/berth/storage/driver"
)

// Catalog returns up to n repository names (all when n <= 0), sorted,
// strictly after last. A repository is a directory below repositories/
// holding _manifests, _layers or a session in _uploads; names nest
// (team/app), and the walk never descends into a repository's own "_"
// directories but the _uploads of one with neither of the others, so its
// cost follows the number of repositories, not of blobs or tags.
func (r *Registry) Catalog(ctx context.Context, n int, last string) ([]string, error) {
	if r.catalogIndexed() {
		ready, err := r.catalogIndexReady(ctx)
		if err != nil {
			return nil, err
		}
		if ready {
			return r.catalogFromIndex(ctx, n, last) // catalogindex.go
		}
	}
	if n > 0 && !driver.HasDirTimes(r.driver) {
		return r.catalogPage(ctx, n, last) // an object store: see catalogpage.go
	}
	seen := map[string]bool{}
	var names []string
	add := func(name string) {
		if name != "." && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	err := driver.Walk(ctx, r.driver, repositoriesRoot, func(fi driver.FileInfo) error {
		if !fi.IsDir || !strings.HasPrefix(fi.Path, repositoriesRoot+"/") {
			return nil
		}
		rel := fi.Path[len(repositoriesRoot)+1:]
		base, name := path.Base(rel), path.Dir(rel)
		if path.Base(name) == "_uploads" {
			// A session, in an _uploads walked into below.
			add(path.Dir(name))
			return driver.ErrSkipDir
		}
		if !strings.HasPrefix(base, "_") {
			return nil
		}
		if base == "_uploads" && !seen[name] {
			// Walked into: empty, as a file system keeps it once the
			// last session ended (see removeSession), it makes no
			// repository.
			return nil
		}
		if isRepoMarker(base) {
			add(name)
		}
		return driver.ErrSkipDir
	})
	if err != nil && !isNotFound(err) {
		return nil, wrapDriverErr("catalog", err)
	}
	return paginate(names, n, last), nil
}
