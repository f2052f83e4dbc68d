package storage

import (
	"context"
	"path"
	"runtime"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/berth-registry/berth/storage/driver"
)

// allTags lists the tag directories of the repository, unsorted. A
// repository without tags gives driver.ErrNotFound (wrapped).
func (r *repository) allTags(ctx context.Context) ([]string, error) {
	entries, err := r.driver().List(ctx, tagsDir(r.name))
	if err != nil {
		return nil, err
	}
	tags := make([]string, 0, len(entries))
	for _, e := range entries {
		tags = append(tags, path.Base(e))
	}
	return tags, nil
}

// tagsPointingAt returns the tags whose current link points at d. A
// repository has one link per tag and on an object store each read is a
// round trip, so the links are read several at a time, at most
// Options.TagConcurrencyLimit (GOMAXPROCS when 0), as Distribution does.
func (r *repository) tagsPointingAt(ctx context.Context, d digest.Digest) ([]string, error) {
	tags, err := r.allTags(ctx)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, wrapDriverErr("delete manifest tags", err)
	}
	limit := r.reg.opts.TagConcurrencyLimit
	if limit <= 0 {
		limit = runtime.GOMAXPROCS(0)
	}
	match := make([]bool, len(tags))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i, t := range tags {
		g.Go(func() error {
			// A link that is missing or unreadable points at nothing.
			cur, err := r.readLink(gctx, tagCurrentLinkPath(r.name, t))
			match[i] = err == nil && cur == d
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []string
	for i, t := range tags {
		if match[i] {
			out = append(out, t)
		}
	}
	return out, nil
}

// Tags returns up to n tags (all when n <= 0) sorted lexically, strictly
// after last, and whether more follow. A repository that exists but has
// no tags gives an empty list; one that does not exist, ErrNameUnknown.
func (r *repository) Tags(ctx context.Context, n int, last string) ([]string, bool, error) {
	var tags []string
	var more bool
	var err error
	if n > 0 && !driver.HasDirTimes(r.driver()) {
		tags, more, err = r.tagPage(ctx, n, last)
	} else if tags, err = r.sortedTags(ctx); err == nil {
		tags, more = page(tags, n, last)
	}
	if err != nil {
		if !isNotFound(err) {
			return nil, false, wrapDriverErr("list tags", err)
		}
		exists, err := r.exists(ctx)
		if err != nil {
			return nil, false, err
		}
		if !exists {
			return nil, false, &Error{Err: ErrNameUnknown, Detail: "repository " + r.name + " is not known"}
		}
		return []string{}, false, nil
	}
	return tags, more, nil
}

// tagList is a repository's tag names, sorted, as listed when its tags
// directory had the modification time mod.
type tagList struct {
	mod  time.Time
	tags []string
}

// dirTimeMargin is how long a directory must have gone unchanged before a
// listing of it is cached: a change within the same tick of the file
// system's clock as the last one would leave the modification time as it
// was.
const dirTimeMargin = time.Second

// sortedTags lists the repository's tags in lexical order. Listing 10 000
// tags for each page of a paginated listing showed in the profile as
// reading the directory (getdents) and sorting; on a local file system,
// where creating or removing a tag changes its directory's modification
// time, the sorted list is kept and reused while that time is unchanged,
// at the cost of one stat. Object stores keep no such time for a prefix:
// they list every time.
func (r *repository) sortedTags(ctx context.Context) ([]string, error) {
	if !driver.HasDirTimes(r.driver()) {
		tags, err := r.allTags(ctx)
		slices.Sort(tags)
		return tags, err
	}
	dir := tagsDir(r.name)
	lists := r.reg.cache.tagLists
	start := time.Now()
	fi, statErr := r.driver().Stat(ctx, dir)
	cacheable := statErr == nil && fi.IsDir && !fi.ModTime.IsZero()
	if cacheable {
		if tl, ok := lists.get(r.name); ok && tl.mod.Equal(fi.ModTime) {
			return tl.tags, nil
		}
	}
	token := lists.begin()
	tags, err := r.allTags(ctx)
	if err != nil {
		return nil, err
	}
	slices.Sort(tags)
	if cacheable && fi.ModTime.Before(start.Add(-dirTimeMargin)) {
		// Unchanged across the listing: the list is the directory's.
		if fi2, err := r.driver().Stat(ctx, dir); err == nil && fi2.ModTime.Equal(fi.ModTime) {
			lists.add(token, r.name, tagList{mod: fi.ModTime, tags: tags}, int64(len(tags))+1)
		}
	}
	return tags, nil
}

// page returns a copy of up to n (all when n <= 0) of the sorted names
// strictly after last, and whether more follow. sorted may be shared, so
// it is never written.
func page(sorted []string, n int, last string) ([]string, bool) {
	if last != "" {
		i, found := slices.BinarySearch(sorted, last)
		if found {
			i++
		}
		sorted = sorted[i:]
	}
	more := n > 0 && len(sorted) > n
	if more {
		sorted = sorted[:n]
	}
	return slices.Clone(sorted), more
}

// paginate sorts names and returns up to n (all when n <= 0) of those
// strictly after last.
func paginate(names []string, n int, last string) []string {
	slices.Sort(names)
	if last != "" {
		i, found := slices.BinarySearch(names, last)
		if found {
			i++
		}
		names = names[i:]
	}
	if n > 0 && len(names) > n {
		names = names[:n]
	}
	return slices.Clip(names)
}

// exists tells whether the repository holds anything: manifests, layers or
// uploads. The catalog uses the same rule.
func (r *repository) exists(ctx context.Context) (bool, error) {
	ok, err := holdsRepository(ctx, r.driver(), r.name)
	if err != nil {
		return false, wrapDriverErr("stat repository", err)
	}
	return ok, nil
}

// holdsRepository tells whether the directory of name is a repository's:
// it holds _manifests or _layers, or an _uploads with a session in it.
func holdsRepository(ctx context.Context, d driver.Driver, name string) (bool, error) {
	entries, err := d.List(ctx, repoPath(name))
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return markersSay(ctx, d, name, entries)
}

// markersSay tells whether entries, the listing of name's directory, make
// it a repository (see holdsRepository). An _uploads alone is looked into:
// a file system keeps it empty once the last session in it ended (see
// removeSession), and an empty one makes no repository.
func markersSay(ctx context.Context, d driver.Driver, name string, entries []string) (bool, error) {
	uploads := false
	for _, e := range entries {
		switch path.Base(e) {
		case "_manifests", "_layers":
			return true, nil
		case "_uploads":
			uploads = true
		}
	}
	if !uploads {
		return false, nil
	}
	return holdsSessions(ctx, d, name)
}

// holdsSessions tells whether name's _uploads holds anything.
func holdsSessions(ctx context.Context, d driver.Driver, name string) (bool, error) {
	sessions, err := d.List(ctx, uploadsDir(name))
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return len(sessions) > 0, nil
}

func isRepoMarker(name string) bool {
	return name == "_manifests" || name == "_layers" || name == "_uploads"
}

// DeleteTag removes the tag; the manifest it pointed at stays.
func (r *repository) DeleteTag(ctx context.Context, tag string) error {
	if err := r.deleteAllowed(); err != nil {
		return err
	}
	if !ValidTag(tag) {
		return &Error{Err: ErrManifestUnknown, Detail: "invalid tag"}
	}
	if err := r.driver().Delete(ctx, tagDir(r.name, tag)); err != nil {
		if isNotFound(err) {
			return &Error{Err: ErrManifestUnknown, Detail: "tag " + tag + " is not in the repository"}
		}
		return wrapDriverErr("delete tag", err)
	}
	r.reg.log.Info("tag deleted", "repo", r.name, "tag", tag)
	return nil
}
