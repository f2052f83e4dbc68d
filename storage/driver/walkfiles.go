package driver

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// WalkFiles is the Walk of a driver whose backend lists every object below
// a prefix in one flat (paginated) listing, as object stores do: given the
// files below root, in any order, it calls fn as Walker defines, with each
// directory the paths imply before what is in it. It sorts files in place.
//
// Object stores list keys in byte order, where "a-b/x" comes before "a/x";
// a walk visits "a" and everything below it before its sibling "a-b", so
// the listing is sorted component by component first.
func WalkFiles(ctx context.Context, root string, files []FileInfo, fn WalkFunc) error {
	slices.SortFunc(files, func(a, b FileInfo) int { return comparePaths(a.Path, b.Path) })
	start := len(root) + 1 // the index after "root/"
	if root == "/" {
		start = 1
	}
	// last is the directory emitted last: the directories on the way to a
	// file that are it or its parents were emitted already.
	var last, skipped string
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if skipped != "" && strings.HasPrefix(f.Path, skipped+"/") {
			continue
		}
		skipped = ""
		for i := start; i < len(f.Path) && skipped == ""; i++ {
			if f.Path[i] != '/' {
				continue
			}
			dir := f.Path[:i]
			if last == dir || strings.HasPrefix(last, dir+"/") {
				continue
			}
			last = dir
			if err := fn(FileInfo{Path: dir, IsDir: true}); errors.Is(err, ErrSkipDir) {
				skipped = dir
			} else if err != nil {
				return err
			}
		}
		if skipped != "" {
			continue
		}
		if err := fn(f); err != nil && !errors.Is(err, ErrSkipDir) {
			return err
		}
	}
	return nil
}

// comparePaths is byte order with '/' before every other byte: a tree
// walk's order.
func comparePaths(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		switch {
		case x == y:
			continue
		case x == '/':
			return -1
		case y == '/':
			return 1
		}
		return int(x) - int(y)
	}
	return len(a) - len(b)
}
