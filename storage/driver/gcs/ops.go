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

	"cloud.google.com/go/storage"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/iterator"

	"github.com/berth-registry/berth/storage/driver"
)

// deleteParallelism bounds the concurrent requests of one Delete; the JSON
// API's batch endpoint is not in the Go client.
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
	obj := d.bucket.Object(d.key(path))
	length := int64(-1)
	if d.reads.Parallel() {
		length = d.reads.Chunk()
	}
	r, err := obj.NewRangeReader(ctx, offset, length)
	switch {
	case err == nil:
	case isNotExist(err):
		return nil, notFound("reader", path)
	case httpStatus(err) == http.StatusRequestedRangeNotSatisfiable:
		// At the very end an empty reader; past it, an invalid offset.
		attrs, aerr := obj.Attrs(ctx)
		if aerr != nil {
			if isNotExist(aerr) {
				return nil, notFound("reader", path)
			}
			return nil, fmt.Errorf("gcs: stat %s: %w", path, aerr)
		}
		if offset == attrs.Size && attrs.ContentType != legacySessionContentType {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, &driver.PathError{Op: "reader", Path: path, Driver: driverName, Err: driver.ErrInvalidOffset}
	default:
		return nil, fmt.Errorf("gcs: read %s: %w", path, err)
	}
	if r.Attrs.ContentType == legacySessionContentType {
		r.Close()
		return nil, notFound("reader", path)
	}
	if length < 0 {
		return r, nil
	}
	pinned := obj.Generation(r.Attrs.Generation)
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		rr, err := pinned.NewRangeReader(ctx, off, n)
		if err != nil {
			return nil, fmt.Errorf("gcs: read %s (generation %d): %w", path, r.Attrs.Generation, err)
		}
		return rr, nil
	}
	return d.reads.Reader(ctx, r, offset, r.Remain(), r.Attrs.Size, open), nil
}

// Stat describes the object at path, or the directory its name prefixes.
func (d *Driver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if path == "/" {
		return driver.FileInfo{Path: path, IsDir: true}, nil
	}
	attrs, err := d.bucket.Object(d.key(path)).Attrs(ctx)
	switch {
	case err == nil && attrs.ContentType != legacySessionContentType:
		return driver.FileInfo{Path: path, Size: attrs.Size, ModTime: attrs.Updated}, nil
	case err != nil && !isNotExist(err):
		return driver.FileInfo{}, fmt.Errorf("gcs: stat %s: %w", path, err)
	}
	q := &storage.Query{Prefix: d.dirKey(path)}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return driver.FileInfo{}, err
	}
	it := d.bucket.Objects(ctx, q)
	it.PageInfo().MaxSize = 1
	if _, err := it.Next(); err != nil {
		if errors.Is(err, iterator.Done) {
			return driver.FileInfo{}, notFound("stat", path)
		}
		return driver.FileInfo{}, fmt.Errorf("gcs: stat %s: %w", path, err)
	}
	return driver.FileInfo{Path: path, IsDir: true}, nil
}

// List returns the files and directories directly below dir, from one
// delimited listing.
func (d *Driver) List(ctx context.Context, dir string) ([]string, error) {
	prefix := d.dirKey(dir)
	q := &storage.Query{Prefix: prefix, Delimiter: "/"}
	if err := q.SetAttrSelection([]string{"Name", "ContentType"}); err != nil {
		return nil, err
	}
	var out []string
	it := d.bucket.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("gcs: list %s: %w", dir, err)
		}
		switch {
		case attrs.Prefix != "":
			if !d.isSidecar(attrs.Prefix) {
				out = append(out, d.path(attrs.Prefix))
			}
		case attrs.Name == prefix, attrs.ContentType == legacySessionContentType:
			// A "folder" placeholder some tools create, or an unfinished
			// upload of Distribution's: neither is a file.
		default:
			out = append(out, d.path(attrs.Name))
		}
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
	from := d.bucket.Object(d.key(src))
	c := objectRetry(d.bucket.Object(d.key(dst))).CopierFrom(from)
	c.ContentType = blobContentType
	if _, err := c.Run(ctx); err != nil {
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
		err := d.bucket.Object(d.key(path)).Delete(ctx)
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
	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return 0, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallelism)
	files := 0
	it := d.bucket.Objects(gctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			g.Wait()
			return 0, fmt.Errorf("gcs: list %s: %w", prefix, err)
		}
		if !d.isSidecar(attrs.Name) {
			files++
		}
		g.Go(func() error { return d.deleteObject(gctx, attrs.Name) })
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := d.bucket.Object(d.key(path)).If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ChunkSize = 0
	w.ContentType = blobContentType
	w.CRC32C, w.SendCRC32C = crc32.Checksum(content, castagnoli), true
	_, err := w.Write(content)
	if err == nil {
		err = w.Close()
	}
	switch {
	case err == nil:
		return nil
	case httpStatus(err) == http.StatusPreconditionFailed:
		return &driver.PathError{Op: "create", Path: path, Driver: driverName, Err: driver.ErrExist}
	}
	return fmt.Errorf("gcs: create %s: %w", path, err)
}

// putObject stores data at key in one request, checked by CRC32C. The
// client's buffered Writer would copy data; it is in memory already, so the
// request is sent unbuffered and retried here.
func (d *Driver) putObject(ctx context.Context, key string, data []byte, meta map[string]string) error {
	sum := crc32.Checksum(data, castagnoli)
	err := d.retry(ctx, func() error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // abandons the upload if Write fails
		w := d.bucket.Object(key).NewWriter(ctx)
		w.ChunkSize = 0
		w.ContentType = blobContentType
		w.Metadata = meta
		w.CRC32C, w.SendCRC32C = sum, true
		if _, err := w.Write(data); err != nil {
			return err
		}
		return w.Close()
	})
	if err != nil {
		return fmt.Errorf("gcs: put %s: %w", key, err)
	}
	return nil
}

// RedirectURL signs a V4 URL for a GET or HEAD of path when the driver has
// a service account's private key; otherwise it returns "".
func (d *Driver) RedirectURL(r *http.Request, path string) (string, error) {
	if d.signer.PrivateKey == "" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return "", nil
	}
	opts := &storage.SignedURLOptions{
		GoogleAccessID: d.signer.ClientEmail,
		PrivateKey:     []byte(d.signer.PrivateKey),
		Method:         r.Method,
		Expires:        time.Now().Add(redirectExpiry),
		Scheme:         storage.SigningSchemeV4,
		Hostname:       d.signHost,
		Insecure:       d.insecure,
	}
	u, err := storage.SignedURL(d.bucketName, d.key(path), opts)
	if err != nil {
		return "", fmt.Errorf("gcs: sign URL for %s: %w", path, err)
	}
	return u, nil
}
