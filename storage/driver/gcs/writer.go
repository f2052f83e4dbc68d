package gcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/storage"

	"github.com/berth-registry/berth/storage/driver"
)

// A sidecar object is a one-line JSON header, a newline, and the tail: the
// bytes written after the last 256 KiB boundary, which GCS accepts only as
// part of the final chunk. The start time is also in the object's metadata,
// so that listing the sidecars (Unfinished) needs no reads.
type sidecarHeader struct {
	Session string    `json:"session,omitempty"` // resumable session URI, none before the first chunk
	Stored  int64     `json:"stored"`            // bytes the session holds
	Started time.Time `json:"started"`
}

const metaStarted = "berth-started" // RFC 3339

var errWriterDone = errors.New("gcs: writer already closed, committed or cancelled")

// writer streams a file through a resumable upload session. Its buffer
// grows up to one chunk; every full chunk goes to GCS as it fills.
type writer struct {
	d       *Driver
	ctx     context.Context // for Write and Close, which take none
	path    string
	session string
	stored  int64  // bytes the session holds
	buf     []byte // bytes not yet in the session
	started time.Time
	sidecar bool // a sidecar object may exist for path
	done    bool
}

// Writer opens a writer for path. With append it resumes the write whose
// state the last writer's Close left in the sidecar object; without, it
// cancels any such write.
func (d *Driver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	w := &writer{d: d, ctx: ctx, path: path, started: time.Now().UTC()}
	st, err := d.readSidecar(ctx, path)
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return nil, err
	}
	found := err == nil
	switch {
	case append && !found:
		return nil, notFound("writer", path)
	case append:
		w.session, w.stored, w.started, w.buf, w.sidecar = st.session, st.stored, st.started, st.tail, true
	case found:
		// A fresh write replaces an unfinished one: free its session.
		if err := d.discard(ctx, path, st.session); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	written := 0
	for len(p) > 0 {
		room := w.d.chunkSize - len(w.buf)
		if room == 0 {
			if err := w.flush(w.ctx, len(w.buf)); err != nil {
				return written, err
			}
			continue
		}
		n := min(room, len(p))
		w.buf = grow(w.buf, n, w.d.chunkSize)
		w.buf = append(w.buf, p[:n]...)
		p, written = p[n:], written+n
	}
	return written, nil
}

// grow makes room for n more bytes without letting the capacity pass
// limit, so a writer holds at most one chunk however it is fed.
func grow(b []byte, n, limit int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	c := min(max(2*cap(b), len(b)+n, 64<<10), limit)
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb
}

// flush sends the first n bytes of the buffer (a multiple of 256 KiB) to
// the session, starting it if needed, and keeps what GCS did not store.
func (w *writer) flush(ctx context.Context, n int) error {
	if w.session == "" {
		s, err := w.d.startSession(ctx, w.d.key(w.path))
		if err != nil {
			return err
		}
		w.session = s
	}
	stored, err := w.d.upload(ctx, w.session, w.buf[:n], w.stored, false)
	if err != nil {
		return err
	}
	if stored == w.stored {
		return fmt.Errorf("gcs: upload session stored none of %d bytes", n)
	}
	w.buf = w.buf[:copy(w.buf, w.buf[stored-w.stored:])]
	w.stored = stored
	return nil
}

func (w *writer) Size() int64 { return w.stored + int64(len(w.buf)) }

// Close sends every whole 256 KiB the buffer holds to the session and keeps
// the rest, with the session's URI, in the sidecar object, where a writer
// on any instance finds it.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	// Close must run even when the request that wrote the bytes is gone,
	// so that what the client sent is not lost: the wrapper gives the
	// writer a context without the request's cancellation, bounded by
	// its write timeout.
	ctx := w.ctx
	for len(w.buf) >= minChunk {
		if err := w.flush(ctx, len(w.buf)-len(w.buf)%minChunk); err != nil {
			return err
		}
	}
	hdr, err := json.Marshal(sidecarHeader{Session: w.session, Stored: w.stored, Started: w.started})
	if err != nil {
		return err
	}
	content := make([]byte, 0, len(hdr)+1+len(w.buf))
	content = append(append(append(content, hdr...), '\n'), w.buf...)
	meta := map[string]string{metaStarted: w.started.Format(time.RFC3339Nano)}
	return w.d.putObject(ctx, w.d.sidecarKey(w.path), content, meta)
}

// Commit finalizes the session, which creates the object; a file that
// never filled a chunk goes up in one request instead.
func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return errWriterDone
	}
	var err error
	if w.session == "" {
		err = w.d.putObject(ctx, w.d.key(w.path), w.buf, nil)
	} else {
		_, err = w.d.upload(ctx, w.session, w.buf, w.stored, true)
	}
	if err != nil {
		return err
	}
	w.done = true
	w.stored += int64(len(w.buf))
	w.buf = nil
	if w.sidecar {
		return w.d.deleteObject(ctx, w.d.sidecarKey(w.path))
	}
	return nil
}

// Cancel discards the session and the sidecar.
func (w *writer) Cancel(ctx context.Context) error {
	w.done = true
	w.buf = nil
	if w.sidecar || w.session != "" {
		return w.d.discard(ctx, w.path, w.session)
	}
	return nil
}

// discard cancels session (if any) and deletes path's sidecar.
func (d *Driver) discard(ctx context.Context, path, session string) error {
	if session != "" {
		if err := d.cancelSession(ctx, session); err != nil {
			return err
		}
	}
	return d.deleteObject(ctx, d.sidecarKey(path))
}

// uploadState is what a sidecar records.
type uploadState struct {
	session string
	stored  int64
	started time.Time
	tail    []byte
}

// readSidecar loads the state of path's unfinished write, or ErrNotFound.
func (d *Driver) readSidecar(ctx context.Context, path string) (uploadState, error) {
	r, err := d.bucket.Object(d.sidecarKey(path)).NewReader(ctx)
	if err != nil {
		if isNotExist(err) {
			return uploadState{}, notFound("writer", path)
		}
		return uploadState{}, fmt.Errorf("gcs: read upload state: %w", err)
	}
	defer r.Close()
	// A header and a tail of less than 256 KiB; anything far larger is not
	// a sidecar this driver wrote.
	limit := int64(max(d.chunkSize, minChunk)) + 4096
	if r.Attrs.Size > limit {
		return uploadState{}, fmt.Errorf("gcs: upload state of %s holds %d bytes, more than a chunk", path, r.Attrs.Size)
	}
	content, err := io.ReadAll(r)
	if err != nil {
		return uploadState{}, fmt.Errorf("gcs: read upload state: %w", err)
	}
	line, tail, ok := bytes.Cut(content, []byte{'\n'})
	var hdr sidecarHeader
	if !ok {
		return uploadState{}, fmt.Errorf("gcs: upload state of %s: no header", path)
	}
	if err := json.Unmarshal(line, &hdr); err != nil {
		return uploadState{}, fmt.Errorf("gcs: upload state of %s: %w", path, err)
	}
	if len(tail) > d.chunkSize {
		// Write fills a buffer up to one chunk; a longer tail was written
		// by something else, perhaps with another chunksize.
		return uploadState{}, fmt.Errorf("gcs: upload state of %s holds a tail of %d bytes, more than a chunk of %d", path, len(tail), d.chunkSize)
	}
	st := uploadState{session: hdr.Session, stored: hdr.Stored, started: hdr.Started}
	// Own copy of the tail, with room to grow before Write reallocates.
	buf := make([]byte, len(tail), max(len(tail), min(d.chunkSize, 2*len(tail)+(64<<10))))
	copy(buf, tail)
	st.tail = buf
	return st, nil
}

// deleteObject deletes key, which may already be gone.
func (d *Driver) deleteObject(ctx context.Context, key string) error {
	err := d.bucket.Object(key).Delete(ctx)
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("gcs: delete %s: %w", key, err)
	}
	return nil
}

// objectRetry makes the client retry an upload or copy even without a
// precondition: the driver writes the same bytes again, which is harmless.
func objectRetry(o *storage.ObjectHandle) *storage.ObjectHandle {
	return o.Retryer(storage.WithPolicy(storage.RetryAlways))
}
