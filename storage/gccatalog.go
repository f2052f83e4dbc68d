package storage

import (
	"context"
	"errors"
	"time"
)

// reconcileCatalog brings the catalog index (catalogindex.go) in line
// with the repositories at the end of a collection: it writes the markers
// missing for repositories it scanned, and prunes those of names that are
// no repository any more (emptied by deletes, by this collection, or
// their uploads purged). Only the names on which the two disagree are
// looked into, with one listing of the repository's directory, as the
// catalog walk tells a repository.
//
// An online collection prunes only markers older than markPruneAge: an
// instance trusts a marker it wrote for markTTL without writing it again,
// so a younger one may stand for a repository being created right now. A
// marker is pruned, then its repository looked at once more: one created
// meanwhile gets its marker back.
func (g *collector) reconcileCatalog(ctx context.Context, scanned map[string]*gcRepo) error {
	r := g.reg
	have, err := r.catalogMarkers(ctx)
	if err != nil {
		return err
	}
	var missing, stale []string
	for name := range scanned {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	for name := range have {
		if scanned[name] == nil {
			stale = append(stale, name)
		}
	}
	var add []string
	for _, name := range missing {
		ok, err := holdsRepository(ctx, r.driver, name)
		if err != nil {
			return wrapDriverErr("gc: catalog index", err)
		}
		if ok {
			add = append(add, name)
		}
	}
	if err := r.putMarkers(ctx, add, markerParallel); err != nil {
		return err
	}
	now := time.Now
	if g.opts.Now != nil {
		now = g.opts.Now
	}
	var pruned []string
	for _, name := range stale {
		ok, err := holdsRepository(ctx, r.driver, name)
		if err != nil {
			return wrapDriverErr("gc: catalog index", err)
		}
		if ok {
			continue // holds only uploads, which the scan skips
		}
		p := catalogMarkerPath(name)
		if g.opts.Online {
			fi, err := r.driver.Stat(ctx, p)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return wrapDriverErr("gc: catalog index", err)
			}
			if fi.ModTime.After(now().Add(-markPruneAge)) {
				continue
			}
		}
		if err := g.fence.check(); err != nil {
			return err
		}
		if err := deleteIfExists(ctx, r.driver, p); err != nil {
			return err
		}
		pruned = append(pruned, name)
		if ok, err := holdsRepository(ctx, r.driver, name); err != nil || ok {
			// Created since it was looked at, or not known: the marker
			// goes back.
			if perr := r.putMarkers(ctx, []string{name}, 1); perr != nil {
				return errors.Join(err, perr)
			}
		}
	}
	r.forgetMarks(pruned)
	if len(add)+len(pruned) > 0 {
		r.log.Info("gc: catalog index reconciled", "added", len(add), "pruned", len(pruned))
	}
	return nil
}
