package azure

import (
	"context"
	"slices"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// Reopen implements driver.Reopener: the write goes on after the blocks
// this writer staged, without the Get Block List that Writer(path, true)
// sends to learn them. That is a round trip on every PATCH of a chunked
// push after the first, and a list that grows with the blob (four blocks
// a 16 MiB chunk, each ID sent back on every request). The caller vouches
// that nothing wrote at the path since Close (see driver.Reopener), so the
// uncommitted block list is the one this writer knows; the next block
// takes the next index, as Writer(path, true) would give it.
func (w *writer) Reopen(ctx context.Context) (driver.FileWriter, error) {
	if !w.reopenable {
		return nil, pathErr("writer", w.path, driver.ErrUnsupported)
	}
	w.reopenable = false
	nw := &writer{
		d:       w.d,
		ctx:     ctx,
		path:    w.path,
		bb:      w.bb,
		started: w.started,
		blocks:  slices.Clone(w.blocks),
		staged:  true,
		size:    w.size,
	}
	nw.start()
	return nw, nil
}

// NewWriter implements driver.FreshWriter: a write at a path where no
// write was ever started needs no Get Block List to find an unfinished one
// to discard. Berth's upload sessions start their write so, at the first
// byte of a path drawn at random.
func (d *Driver) NewWriter(ctx context.Context, path string) (driver.FileWriter, error) {
	w := &writer{
		d:       d,
		ctx:     ctx,
		path:    path,
		bb:      d.c.NewBlockBlobClient(d.name(path)),
		started: time.Now().Unix(),
	}
	w.start()
	return w, nil
}
