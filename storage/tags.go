package storage

import (
	"context"
	"path"
	"slices"
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

// Tags returns up to n tags (all when n <= 0) sorted lexically, strictly
// after last. A repository that exists but has no tags gives an empty list;
// one that does not exist, ErrNameUnknown.
func (r *repository) Tags(ctx context.Context, n int, last string) ([]string, error) {
	tags, err := r.allTags(ctx)
	if err != nil {
		if !isNotFound(err) {
			return nil, wrapDriverErr("list tags", err)
		}
		exists, err := r.exists(ctx)
		if err != nil {
			return nil, err
		}
		if !exists {
			return nil, &Error{Err: ErrNameUnknown, Detail: "repository " + r.name + " is not known"}
		}
		return []string{}, nil
	}
	return paginate(tags, n, last), nil
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
	entries, err := r.driver().List(ctx, repoPath(r.name))
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, wrapDriverErr("stat repository", err)
	}
	for _, e := range entries {
		if isRepoMarker(path.Base(e)) {
			return true, nil
		}
	}
	return false, nil
}

func isRepoMarker(name string) bool {
	return name == "_manifests" || name == "_layers" || name == "_uploads"
}

// DeleteTag removes the tag; the manifest it pointed at stays.
func (r *repository) DeleteTag(ctx context.Context, tag string) error {
	if err := r.deleteAllowed(); err != nil {
		return err
	}
	if !validTag(tag) {
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
