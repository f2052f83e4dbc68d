package swift

import (
	"context"
	"sync"

	"github.com/ncw/swift/v2"
	"golang.org/x/sync/errgroup"

	"github.com/berth-registry/berth/storage/driver"
)

// deleteParallel bounds single deletions in flight where the cluster has
// no bulk delete middleware.
const deleteParallel = 16

// Delete implements driver.Driver: a file with its segments, or every file
// below a directory with their segments and the unfinished writes there.
func (d *Driver) Delete(ctx context.Context, path string) error {
	if path != "/" {
		seg, err := d.manifestOf(ctx, d.object(path))
		if err == nil {
			if err := d.deleteNames(ctx, []string{d.object(path)}); err != nil {
				return mapErr("delete", path, err)
			}
			d.dropSegments(ctx, seg)
			return nil
		}
		if !isNotFound(err) {
			return mapErr("delete", path, err)
		}
	}
	objs, err := d.conn.ObjectsAll(ctx, d.cfg.Container, &swift.ObjectsOpts{Prefix: d.dirPrefix(path)})
	if err != nil {
		return mapErr("delete", path, err)
	}
	var names, segPrefixes []string
	for _, o := range objs {
		names = append(names, o.Name)
		if o.Bytes == 0 { // a manifest lists as empty
			if seg, err := d.manifestOf(ctx, o.Name); err == nil && seg != "" {
				segPrefixes = append(segPrefixes, seg)
			}
		}
	}
	statePrefix := d.cfg.prefix + "uploads/"
	if path != "/" {
		statePrefix = d.stateObject(path) + "/"
	}
	states, err := d.conn.ObjectNamesAll(ctx, d.cfg.Container, &swift.ObjectsOpts{Prefix: statePrefix})
	if err != nil {
		return mapErr("delete", path, err)
	}
	for _, s := range states {
		if st, err := d.readState(ctx, s); err == nil {
			segPrefixes = append(segPrefixes, st.segments)
		}
		names = append(names, s)
	}
	for _, p := range segPrefixes {
		segs, err := d.conn.ObjectNamesAll(ctx, d.cfg.Container, &swift.ObjectsOpts{Prefix: p})
		if err != nil {
			return mapErr("delete", path, err)
		}
		names = append(names, segs...)
	}
	if err := d.deleteNames(ctx, names); err != nil {
		return mapErr("delete", path, err)
	}
	if len(objs) == 0 {
		return pathErr("delete", path, driver.ErrNotFound)
	}
	return nil
}

// deleteNames deletes objects, ignoring those already gone: with the bulk
// middleware up to its limit per request, else deleteParallel at a time.
func (d *Driver) deleteNames(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if max := d.bulkLimit(ctx); max > 0 && len(names) > 1 {
		for len(names) > 0 {
			n := min(max, len(names))
			res, err := d.conn.BulkDelete(ctx, d.cfg.Container, names[:n])
			if err != nil {
				return err
			}
			for _, e := range res.Errors {
				if !isNotFound(e) {
					return e
				}
			}
			names = names[n:]
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallel)
	for _, n := range names {
		g.Go(func() error {
			if err := d.conn.ObjectDelete(gctx, d.cfg.Container, n); err != nil && !isNotFound(err) {
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// bulkLimit is how many deletions one bulk request may carry, 0 when the
// cluster does not offer bulk deletes. The answer is asked for once.
func (d *Driver) bulkLimit(ctx context.Context) int {
	d.infoOnce.Do(func() { d.info, d.infoErr = d.conn.QueryInfo(ctx) })
	if d.infoErr != nil || !d.info.SupportsBulkDelete() {
		return 0
	}
	if bd, ok := d.info["bulk_delete"].(map[string]any); ok {
		if n, ok := bd["max_deletes_per_request"].(float64); ok && n > 0 {
			return int(n)
		}
	}
	return 1000
}

// infoCache holds the cluster's /info answer.
type infoCache struct {
	infoOnce sync.Once
	info     swift.SwiftInfo
	infoErr  error
}
