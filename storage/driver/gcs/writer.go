package gcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/inflight"
)

// A sidecar object is a one-line JSON header, a newline, and the tail: the
// bytes written after the last 256 KiB boundary, which GCS accepts only as
// part of the final chunk. The start time is also in the object's metadata,
// so that listing the sidecars (Unfinished) needs no reads.
type sidecarHeader struct {
	Session string    `json:"session,omitempty"` // resumable session URI, none before the first chunk
	Stored  int64     `json:"stored"`            // bytes the session or the components hold
	Started time.Time `json:"started"`
	// Parts are the components of a composite write, in order, below
	// partsDir; there is no session then.
	Parts []string `json:"parts,omitempty"`
}

const metaStarted = "berth-started" // RFC 3339

var errWriterDone = errors.New("gcs: writer already closed, committed or cancelled")

// writer streams a file through a resumable upload session, or with
// writeconcurrency above 1 as components composed at Commit (compose.go).
// Its first buffer grows up to one chunk; every full chunk goes to GCS as
// it fills.
type writer struct {
	d       *Driver
	ctx     context.Context // for Write and Close, which take none
	path    string
	session string
	stored  int64  // bytes the session or the components hold, in flight included
	buf     []byte // bytes not yet sent
	started time.Time
	sidecar bool // a sidecar object may exist for path
	done    bool

	// A composite write's state: its components are named id-1, id-2, …
	composite bool
	id        string
	seq       int
	parts     []string                // components that landed, in order
	flight    *inflight.Queue[string] // components in flight; each lands as its name
	err       error                   // a failed component poisons the writer
	// partCtx is what components upload under: ctx, until Cancel.
	partCtx context.Context
	stop    context.CancelFunc
}

// Writer opens a writer for path. With append it resumes the write whose
// state the last writer's Close left in the sidecar object; without, it
// cancels any such write.
func (d *Driver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	w := &writer{d: d, ctx: ctx, path: path, started: time.Now().UTC(), id: newWriterID()}
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
		w.parts = st.parts
	case found:
		// A fresh write replaces an unfinished one: free its session.
		if err := d.discard(ctx, path, st.session); err != nil {
			return nil, err
		}
	}
	// A write that began in a session ends in it; one that began with
	// components ends with them, whatever writeconcurrency is now.
	w.composite = len(w.parts) > 0 || (w.session == "" && d.writeConcurrency > 1)
	w.flight = inflight.New(d.bufs, d.memory, d.writeConcurrency, w.landed)
	w.partCtx, w.stop = context.WithCancel(ctx)
	return w, nil
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	if len(p) > 0 {
		w.flight.Writing()
	}
	written := 0
	for len(p) > 0 {
		room := w.d.chunkSize - len(w.buf)
		if room == 0 {
			var err error
			if w.composite {
				err = w.sendComponent()
			} else {
				err = w.flush(w.ctx, len(w.buf))
			}
			if err != nil {
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
	defer w.stop()
	// A session's writer holds a unit of writememory too, once it wrote.
	defer w.releaseBuffers()
	if w.composite {
		// Components of any size compose; a small tail waits in the
		// sidecar so that many small requests do not make many
		// components.
		if err := w.settle(); err != nil {
			return err
		}
		if len(w.buf) >= minChunk {
			if err := w.sendTail(ctx); err != nil {
				return err
			}
		}
	}
	for !w.composite && len(w.buf) >= minChunk {
		if err := w.flush(ctx, len(w.buf)-len(w.buf)%minChunk); err != nil {
			return err
		}
	}
	hdr, err := json.Marshal(sidecarHeader{Session: w.session, Stored: w.stored, Started: w.started, Parts: w.parts})
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
	// The writer holds a unit of writememory once it wrote. A commit that
	// fails gives it back too (storage does not Cancel after a failed
	// Commit; commitComposite settles every component first), and a Write
	// after it takes it again.
	defer w.releaseBuffers()
	if w.composite {
		return w.commitComposite(ctx)
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
	w.stop()
	w.stored += int64(len(w.buf))
	w.buf = nil
	if w.sidecar {
		return w.d.deleteObject(ctx, w.d.sidecarKey(w.path))
	}
	return nil
}

// commitComposite waits for the components in flight, sends the buffer
// as the last one and composes them at the file's name; a file that never
// filled a chunk goes up in one request instead. Then it deletes the
// components and the sidecar.
func (w *writer) commitComposite(ctx context.Context) error {
	if err := w.settle(); err != nil {
		return err
	}
	key := w.d.key(w.path)
	if len(w.parts) == 0 {
		if err := w.d.putObject(ctx, key, w.buf, nil); err != nil {
			return err
		}
		w.stored += int64(len(w.buf))
		w.buf = w.buf[:0]
	} else {
		if len(w.buf) > 0 {
			if err := w.sendTail(ctx); err != nil {
				return err
			}
		}
		if err := w.composeParts(ctx, key); err != nil {
			return err
		}
	}
	w.done = true
	w.stop()
	w.releaseBuffers()
	w.buf = nil
	if len(w.parts) > 0 {
		if _, err := w.d.deleteBelow(ctx, w.d.partsDir(w.path)); err != nil {
			return err
		}
	}
	if w.sidecar {
		return w.d.deleteObject(ctx, w.d.sidecarKey(w.path))
	}
	return nil
}

// Cancel discards the session or the components, and the sidecar.
func (w *writer) Cancel(ctx context.Context) error {
	w.done = true
	w.buf = nil
	// Components in flight are let end (each has its deadline) before
	// their objects are deleted, not cancelled: a request cancelled after
	// its body went out may still be stored by the service after the
	// listing below, and stay there.
	sent := w.stored > 0
	_ = w.settle()
	w.stop()
	w.releaseBuffers()
	if w.sidecar || w.session != "" || sent {
		return w.d.discard(ctx, w.path, w.session)
	}
	return nil
}

// discard cancels session (if any), deletes the components of a composite
// write and path's sidecar.
func (d *Driver) discard(ctx context.Context, path, session string) error {
	if session != "" {
		if err := d.cancelSession(ctx, session); err != nil {
			return err
		}
	} else if _, err := d.deleteBelow(ctx, d.partsDir(path)); err != nil {
		return err
	}
	return d.deleteObject(ctx, d.sidecarKey(path))
}

// uploadState is what a sidecar records.
type uploadState struct {
	parts   []string
	session string
	stored  int64
	started time.Time
	tail    []byte
}

// readSidecar loads the state of path's unfinished write, or ErrNotFound.
func (d *Driver) readSidecar(ctx context.Context, path string) (uploadState, error) {
	r, err := d.openRange(ctx, d.sidecarKey(path), 0, 0, -1)
	if err != nil {
		if isNotExist(err) {
			return uploadState{}, notFound("writer", path)
		}
		return uploadState{}, fmt.Errorf("gcs: read upload state: %w", err)
	}
	defer r.Close()
	// A header and a tail of less than a chunk; anything far larger is not
	// a sidecar this driver wrote. The header lists components, about 20
	// bytes each.
	limit := int64(max(d.chunkSize, minChunk)) + 4<<20
	if r.size > limit {
		return uploadState{}, fmt.Errorf("gcs: upload state of %s holds %d bytes, more than a chunk", path, r.size)
	}
	content, err := io.ReadAll(io.LimitReader(r, limit+1))
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
	if hdr.Session != "" && len(hdr.Parts) > 0 {
		return uploadState{}, fmt.Errorf("gcs: upload state of %s names both a session and components", path)
	}
	for _, p := range hdr.Parts {
		if !strings.HasPrefix(p, "~") || strings.Contains(p, "/") {
			return uploadState{}, fmt.Errorf("gcs: upload state of %s names component %q", path, p)
		}
	}
	st := uploadState{session: hdr.Session, stored: hdr.Stored, started: hdr.Started, parts: hdr.Parts}
	// Own copy of the tail, with room to grow before Write reallocates.
	buf := make([]byte, len(tail), max(len(tail), min(d.chunkSize, 2*len(tail)+(64<<10))))
	copy(buf, tail)
	st.tail = buf
	return st, nil
}

// deleteObject deletes key, which may already be gone; so it is safe to
// repeat.
func (d *Driver) deleteObject(ctx context.Context, key string) error {
	err := d.retry(ctx, func() error {
		if err := d.del(ctx, key); err != nil && !isNotExist(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gcs: delete %s: %w", key, err)
	}
	return nil
}
