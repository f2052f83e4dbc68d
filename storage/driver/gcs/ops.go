package gcs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-registry/berth/storage/driver"
)

// deleteParallelism bounds the concurrent requests of one Delete: the
// driver does not speak the JSON API's batch endpoint, so each object is
// one DELETE.
const deleteParallelism = 16

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Reader streams the object at path from offset. A parallel read (see
// package ranged) asks for its first chunk, learns the object's size and
// generation from the answer, and reads the ranges after it from that
// generation, which GCS no longer serves once the object was replaced
// (unless the bucket keeps old versions, which then serves its bytes).
// Objects no larger than a chunk, and readers with readconcurrency 1,
// cost one GET.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, &driver.PathError{Op: "reader", Path: path, Driver: driverName, Err: driver.ErrInvalidOffset}
	}
	key := d.key(path)
	length := int64(-1)
	if d.reads.Parallel() {
		length = d.reads.Chunk()
	}
	r, err := d.openRange(ctx, key, 0, offset, length)
	switch {
	case err == nil:
	case isNotExist(err):
		return nil, notFound("reader", path)
	case httpStatus(err) == http.StatusRequestedRangeNotSatisfiable:
		// At the very end an empty reader; past it, an invalid offset.
		attrs, aerr := d.attrs(ctx, key)
		if aerr != nil {
			if isNotExist(aerr) {
				return nil, notFound("reader", path)
			}
			return nil, fmt.Errorf("gcs: stat %s: %w", path, aerr)
		}
		if offset == int64(attrs.Size) && attrs.ContentType != legacySessionContentType {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, &driver.PathError{Op: "reader", Path: path, Driver: driverName, Err: driver.ErrInvalidOffset}
	default:
		return nil, fmt.Errorf("gcs: read %s: %w", path, err)
	}
	if r.contentType == legacySessionContentType {
		r.Close()
		return nil, notFound("reader", path)
	}
	if length < 0 {
		return r, nil
	}
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		rr, err := d.openRange(ctx, key, r.generation, off, n)
		if err != nil {
			return nil, fmt.Errorf("gcs: read %s (generation %d): %w", path, r.generation, err)
		}
		return rr, nil
	}
	return d.reads.Reader(ctx, r, offset, r.remain, r.size, open), nil
}

// Stat describes the object at path, or the directory its name prefixes.
func (d *Driver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if path == "/" {
		return driver.FileInfo{Path: path, IsDir: true}, nil
	}
	attrs, err := d.attrs(ctx, d.key(path))
	switch {
	case err == nil && attrs.ContentType != legacySessionContentType:
		return driver.FileInfo{Path: path, Size: int64(attrs.Size), ModTime: attrs.Updated}, nil
	case err != nil && !isNotExist(err):
		return driver.FileInfo{}, fmt.Errorf("gcs: stat %s: %w", path, err)
	}
	// A page may come back empty with a token for the next one; only the
	// end of the listing says there is nothing below path.
	size := 1
	for page, err := range d.pages(ctx, listQuery{prefix: d.dirKey(path), fields: "name"}, &size) {
		if err != nil {
			return driver.FileInfo{}, fmt.Errorf("gcs: stat %s: %w", path, err)
		}
		if len(page.Items) > 0 {
			return driver.FileInfo{Path: path, IsDir: true}, nil
		}
	}
	return driver.FileInfo{}, notFound("stat", path)
}

// List returns the files and directories directly below dir, from one
// delimited listing.
func (d *Driver) List(ctx context.Context, dir string) ([]string, error) {
	prefix := d.dirKey(dir)
	var out []string
	err := d.listEach(ctx, listQuery{prefix: prefix, delimiter: "/", fields: "name,contentType"}, func(o object, sub string) error {
		switch {
		case sub != "":
			if !d.isSidecar(sub) {
				out = append(out, d.path(sub))
			}
		case o.Name == prefix, o.ContentType == legacySessionContentType:
			// A "folder" placeholder some tools create, or an unfinished
			// upload of Distribution's: neither is a file.
		default:
			out = append(out, d.path(o.Name))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gcs: list %s: %w", dir, err)
	}
	if len(out) == 0 && dir != "/" {
		return nil, notFound("list", dir)
	}
	return out, nil
}

// Move copies src to dst on the server (in several rewrite calls for a
// large object), then deletes src.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	if src == dst {
		_, err := d.Stat(ctx, src)
		return err
	}
	if err := d.copyObject(ctx, d.key(src), d.key(dst)); err != nil {
		if isNotExist(err) {
			return notFound("move", src)
		}
		return fmt.Errorf("gcs: copy %s to %s: %w", src, dst, err)
	}
	return d.deleteObject(ctx, d.key(src))
}

// Delete removes the object at path and every object below it, with the
// state of unfinished writes there. It is ErrNotFound when no file was
// there, even if unfinished writes were.
func (d *Driver) Delete(ctx context.Context, path string) error {
	found := false
	if path != "/" {
		// Not retried: a retry of a delete whose answer was lost would
		// find nothing and report the file missing.
		err := d.del(ctx, d.key(path))
		switch {
		case err == nil:
			found = true
		case !isNotExist(err):
			return fmt.Errorf("gcs: delete %s: %w", path, err)
		}
	}
	below, err := d.deleteBelow(ctx, d.dirKey(path))
	if err != nil {
		return err
	}
	if path != "/" {
		if err := d.discardBelow(ctx, path); err != nil {
			return err
		}
		// Components of writes that crashed before their first Close have
		// no sidecar to find them by.
		if _, err := d.deleteBelow(ctx, d.partsDir(path)); err != nil {
			return err
		}
	}
	if !found && below == 0 {
		return notFound("delete", path)
	}
	return nil
}

// deleteBelow deletes every object whose name starts with prefix, as it
// lists them, and returns how many were files rather than sidecars.
func (d *Driver) deleteBelow(ctx context.Context, prefix string) (int, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallelism)
	files := 0
	err := d.listEach(gctx, listQuery{prefix: prefix, fields: "name"}, func(o object, _ string) error {
		if !d.isSidecar(o.Name) {
			files++
		}
		g.Go(func() error { return d.deleteObject(gctx, o.Name) })
		return nil
	})
	if err != nil {
		g.Wait()
		return 0, fmt.Errorf("gcs: list %s: %w", prefix, err)
	}
	return files, g.Wait()
}

// discardBelow cancels the unfinished writes at path and below it.
func (d *Driver) discardBelow(ctx context.Context, path string) error {
	paths, err := d.unfinished(ctx, path)
	if err != nil {
		return err
	}
	paths[path] = time.Time{} // the write at path itself, if any
	for p := range paths {
		st, err := d.readSidecar(ctx, p)
		if errors.Is(err, driver.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := d.discard(ctx, p, st.session); err != nil {
			return err
		}
	}
	return nil
}

// PutContent stores content at path in one request.
func (d *Driver) PutContent(ctx context.Context, path string, content []byte) error {
	return d.putObject(ctx, d.key(path), content, nil)
}

// Create implements driver.Creator with an upload conditioned on
// ifGenerationMatch=0, which GCS refuses with 412 when the object exists.
// It is not retried: a retry of a create that won but whose answer was
// lost would report it lost, leaving a lease nobody holds until it ends.
func (d *Driver) Create(ctx context.Context, path string, content []byte) error {
	err := d.insert(ctx, d.key(path), content, nil, true)
	switch {
	case err == nil:
		return nil
	case httpStatus(err) == http.StatusPreconditionFailed:
		return &driver.PathError{Op: "create", Path: path, Driver: driverName, Err: driver.ErrExist}
	}
	return fmt.Errorf("gcs: create %s: %w", path, err)
}

// putObject stores data at key in one request, checked by CRC32C, and
// retried: the same bytes again are harmless.
func (d *Driver) putObject(ctx context.Context, key string, data []byte, meta map[string]string) error {
	err := d.retry(ctx, func() error { return d.insert(ctx, key, data, meta, false) })
	if err != nil {
		return fmt.Errorf("gcs: put %s: %w", key, err)
	}
	return nil
}

// RedirectURL signs a V4 URL for a GET or HEAD of path when the driver has
// a service account's private key; otherwise it returns "".
func (d *Driver) RedirectURL(r *http.Request, path string) (string, error) {
	if d.signer == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return "", nil
	}
	u, err := d.signer.sign(r.Method, d.bucketName, d.key(path), time.Now(), redirectExpiry)
	if err != nil {
		return "", fmt.Errorf("gcs: sign URL for %s: %w", path, err)
	}
	return u, nil
}
