package gcs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"golang.org/x/sync/errgroup"
)

// A resumable upload takes its chunks one after the other, so a writer on
// one is held to what one TCP stream to GCS carries. With writeconcurrency
// above 1 a writer instead uploads each full chunk as a temporary object
// (a component, below partsDir) in the background while it fills the next
// buffer, up to writeconcurrency at a time, and Commit composes the
// components into the file, 32 at a time (GCS's limit per compose), then
// deletes them. The components' order is fixed when each is sent, so the
// file's bytes are in write order however the uploads finish.
//
// Component names carry a random id per writer, so a writer that crashed
// with components in flight cannot overwrite those of the writer that
// resumes after it: the resumed write composes only the components its
// sidecar lists, and Commit and Cancel delete everything below partsDir,
// stragglers included.
//
// Memory: every writer has one buffer; more, up to writeconcurrency, only
// while the driver's writememory allows, so many concurrent writers fall
// back to one component at a time rather than grow.

// maxCompose is the most source objects one compose request takes.
const maxCompose = 32

// errCorruptUpload is GCS reporting a checksum other than the one of the
// bytes sent: the upload is sent again.
var errCorruptUpload = errors.New("gcs: upload stored other bytes than sent")

// newWriterID names one writer's components.
func newWriterID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sendComponent hands the full buffer to a background upload as the next
// component and gives the writer an empty buffer to fill.
func (w *writer) sendComponent() error {
	if err := w.reap(); err != nil {
		return err
	}
	name := w.componentName()
	w.stored += int64(len(w.buf))
	ctx, key := w.partCtx, w.d.partsDir(w.path)+name
	next, err := w.flight.Send(w.buf, func(b []byte) (string, error) {
		return name, w.d.putComponent(ctx, key, b)
	})
	w.buf = next
	return w.poison(err)
}

// landed records a component that landed; components land in the order
// they were sent.
func (w *writer) landed(name string) { w.parts = append(w.parts, name) }

func (w *writer) componentName() string {
	w.seq++
	return fmt.Sprintf("~%s-%06d", w.id, w.seq)
}

// poison keeps the first failure of a component as the writer's: its bytes
// are not stored, so neither Close nor Commit may claim them.
func (w *writer) poison(err error) error {
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("gcs: write %s: %w", w.path, err)
	}
	return w.err
}

// reap records the components that already landed, without waiting, and
// returns the writer's failure if any.
func (w *writer) reap() error { return w.poison(w.flight.Reap()) }

// settle waits for every component in flight.
func (w *writer) settle() error { return w.poison(w.flight.Settle()) }

// sendTail uploads the buffer as the last components and waits for them.
// A request's bytes must be stored before it ends, so a buffer of several
// 256 KiB is split into up to writeconcurrency components sent together:
// a client that sends one chunk per request (docker's PATCHes of a fixed
// size) still gets several streams.
func (w *writer) sendTail(ctx context.Context) error {
	n := max(1, min(w.d.writeConcurrency, len(w.buf)/minChunk))
	size := (len(w.buf) + n - 1) / n
	var names []string
	var g errgroup.Group
	for off := 0; off < len(w.buf); off += size {
		name, b := w.componentName(), w.buf[off:min(off+size, len(w.buf))]
		names = append(names, name)
		g.Go(func() error { return w.d.putComponent(ctx, w.d.partsDir(w.path)+name, b) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("gcs: write %s: %w", w.path, err)
	}
	w.parts = append(w.parts, names...)
	w.stored += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// releaseBuffers gives back the buffers and the memory the writer held
// beyond its first one; components must have finished (settle).
func (w *writer) releaseBuffers() { w.flight.Release() }

// putComponent stores data at key in one media upload, checked against the
// CRC32C GCS computes (the JSON API takes no checksum with a media upload).
func (d *Driver) putComponent(ctx context.Context, key string, data []byte) error {
	want := crc32c(data)
	u := d.uploadBase + "?" + url.Values{"uploadType": {"media"}, "name": {key}}.Encode()
	return d.retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
		if err != nil {
			return err
		}
		req.ContentLength = int64(len(data))
		req.Header.Set("Content-Type", blobContentType)
		resp, err := d.hc.Do(req)
		if err != nil {
			return err
		}
		defer drain(resp)
		if resp.StatusCode != http.StatusOK {
			return answerError("upload component", resp)
		}
		return checkStored("upload component", resp, want)
	})
}

// composeParts makes the object key of the components names (below
// partsDir(path)), in order: groups of 32 into intermediate objects, level
// by level, then the last compose creates key, which is the only request
// that makes anything visible at it.
func (w *writer) composeParts(ctx context.Context, key string) error {
	dir := w.d.partsDir(w.path)
	srcs := make([]string, len(w.parts))
	for i, p := range w.parts {
		srcs[i] = dir + p
	}
	for level := 0; len(srcs) > maxCompose; level++ {
		next := make([]string, (len(srcs)+maxCompose-1)/maxCompose)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(w.d.writeConcurrency)
		for i := range next {
			group := srcs[i*maxCompose : min((i+1)*maxCompose, len(srcs))]
			next[i] = fmt.Sprintf("%s~%s-c%d-%06d", dir, w.id, level, i)
			g.Go(func() error { return w.d.compose(gctx, next[i], group) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		srcs = next
	}
	return w.d.compose(ctx, key, srcs)
}

// compose writes the concatenation of srcs at dst. It is safe to repeat:
// the same sources give the same object.
func (d *Driver) compose(ctx context.Context, dst string, srcs []string) error {
	if err := d.composeObject(ctx, dst, srcs); err != nil {
		return fmt.Errorf("gcs: compose %s: %w", dst, err)
	}
	return nil
}
