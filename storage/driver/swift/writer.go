package swift

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/berth-registry/berth/storage/driver"
)

// The state object of an unfinished write is empty; its metadata says
// where the segments are, how many and how many bytes, and when the write
// began. Segments are numbered from 1, as Distribution numbers them.
const (
	metaSegments = "Berth-Segments"
	metaCount    = "Berth-Count"
	metaSize     = "Berth-Size"
	metaStarted  = "Berth-Started"
)

var errClosed = errors.New("writer already closed, committed or cancelled")

type state struct {
	segments string // segment name prefix, ending in "/"
	count    int
	size     int64
	started  time.Time
}

// readState reads the state object of an unfinished write to path.
func (d *Driver) readState(ctx context.Context, name string) (state, error) {
	_, h, err := d.conn.Object(ctx, d.cfg.Container, name)
	if err != nil {
		return state{}, err
	}
	m := h.ObjectMetadata()
	s := state{segments: m[lower(metaSegments)]}
	var err1, err2, err3 error
	s.count, err1 = strconv.Atoi(m[lower(metaCount)])
	s.size, err2 = strconv.ParseInt(m[lower(metaSize)], 10, 64)
	s.started, err3 = time.Parse(time.RFC3339, m[lower(metaStarted)])
	if s.segments == "" || err1 != nil || err2 != nil || err3 != nil {
		return state{}, fmt.Errorf("state object %s is damaged: %v", name, m)
	}
	return s, nil
}

func lower(s string) string { return string(bytes.ToLower([]byte(s))) }

func (d *Driver) segmentName(prefix string, n int) string { return fmt.Sprintf("%s%016d", prefix, n) }

func (d *Driver) newSegmentPrefix() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	return d.cfg.prefix + "segments/" + id[:3] + "/" + id[3:] + "/"
}

// discard deletes an unfinished write's segments and state object.
func (d *Driver) discard(ctx context.Context, stateName string, s state) error {
	names, err := d.conn.ObjectNamesAll(ctx, d.cfg.Container, &swift.ObjectsOpts{Prefix: s.segments})
	if err != nil {
		return err
	}
	return d.deleteNames(ctx, append(names, stateName))
}

// writer puts a segment each time its buffer fills; Close puts the tail as
// a shorter segment, which a Dynamic Large Object allows anywhere, and
// records the write in its state object. Memory is one chunksize buffer
// from the driver's pool, given back by Commit, Cancel or Close.
type writer struct {
	d     *Driver
	ctx   context.Context // for Write and Close, which take none
	path  string
	state state
	saved bool   // a state object exists
	buf   []byte // nil once back in the pool
	tail  int64  // bytes buf held when it went back, which Size still counts

	closed, done bool
	err          error
}

// Writer implements driver.Driver.
func (d *Driver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	sname := d.stateObject(path)
	s, err := d.readState(ctx, sname)
	exists := err == nil
	if err != nil && !isNotFound(err) {
		return nil, mapErr("writer", path, err)
	}
	w := &writer{d: d, ctx: ctx, path: path}
	switch {
	case append && !exists:
		return nil, pathErr("writer", path, driver.ErrNotFound)
	case append:
		w.state, w.saved = s, true
	default:
		if exists {
			if err := d.discard(ctx, sname, s); err != nil {
				return nil, mapErr("writer", path, err)
			}
		}
		w.state = state{segments: d.newSegmentPrefix(), started: time.Now().UTC().Truncate(time.Second)}
	}
	w.buf = d.bufs.Get()
	return w, nil
}

// release gives the buffer back to the pool the first time it runs:
// Commit, Cancel, Close and a failed flush all call it. Nothing touches
// the buffer after, as Write, Close and Commit refuse a writer that is
// closed, done or poisoned, and Cancel only releases it.
func (w *writer) release() {
	if w.buf != nil {
		w.tail = int64(len(w.buf))
		w.d.bufs.Put(w.buf)
		w.buf = nil
	}
}

func (w *writer) check() error {
	if w.closed || w.done {
		return pathErr("write", w.path, errClosed)
	}
	return w.err
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p, n = p[k:], n+k
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(w.ctx); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush puts the buffer as the next segment.
func (w *writer) flush(ctx context.Context) error {
	name := w.d.segmentName(w.state.segments, w.state.count+1)
	if err := w.d.put(ctx, name, w.buf, nil); err != nil {
		w.err = mapErr("write", w.path, err)
		// Nothing more is sent from a poisoned writer, and its caller may
		// drop it without Close: the buffer goes back now.
		w.release()
		return w.err
	}
	w.state.count++
	w.state.size += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

func (w *writer) Size() int64 { return w.state.size + w.tail + int64(len(w.buf)) }

func (w *writer) saveState(ctx context.Context) error {
	m := swift.Metadata{
		metaSegments: w.state.segments,
		metaCount:    strconv.Itoa(w.state.count),
		metaSize:     strconv.FormatInt(w.state.size, 10),
		metaStarted:  w.state.started.Format(time.RFC3339),
	}
	err := w.d.put(ctx, w.d.stateObject(w.path), nil, m.ObjectHeaders())
	if err != nil {
		return mapErr("close", w.path, err)
	}
	w.saved = true
	return nil
}

// Close puts the tail and saves the state, so Writer(path, true) resumes.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	if w.closed {
		return pathErr("close", w.path, errClosed)
	}
	if w.err != nil {
		return w.err
	}
	w.closed = true
	if len(w.buf) > 0 {
		if err := w.flush(w.ctx); err != nil {
			return err
		}
	}
	w.release()
	return w.saveState(w.ctx)
}

// Commit makes the file visible: one PUT for a write that never filled a
// segment, else a Dynamic Large Object manifest over the segments.
func (w *writer) Commit(ctx context.Context) error {
	if err := w.check(); err != nil {
		return err
	}
	w.done = true
	name := w.d.object(w.path)
	old, _ := w.d.manifestOf(ctx, name)
	var h swift.Headers
	body := w.buf
	if w.state.count > 0 {
		if len(w.buf) > 0 {
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		body = nil
		h = swift.Headers{"X-Object-Manifest": w.d.cfg.Container + "/" + w.state.segments}
	}
	size := w.Size()
	err := w.d.put(ctx, name, body, h)
	w.release()
	w.tail = 0 // the buffer's bytes went to the put: Size counts segments only
	if err != nil {
		return mapErr("commit", w.path, err)
	}
	if w.saved {
		if err := w.d.conn.ObjectDelete(ctx, w.d.cfg.Container, w.d.stateObject(w.path)); err != nil && !isNotFound(err) {
			return mapErr("commit", w.path, err)
		}
	}
	if old != "" && old != w.state.segments {
		w.d.dropSegments(ctx, old)
	}
	if h != nil {
		return w.waitSize(ctx, name, size)
	}
	return nil
}

// waitSize waits until the manifest reports every segment: a DLO's size
// comes from a container listing, which a cluster may update late.
func (w *writer) waitSize(ctx context.Context, name string, size int64) error {
	delay := 50 * time.Millisecond
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, _, err := w.d.conn.Object(ctx, w.d.cfg.Container, name)
		if err == nil && info.Bytes == size {
			return nil
		}
		if time.Now().After(deadline) {
			return pathErr("commit", w.path, fmt.Errorf("large object shows %d bytes of %d after 15s (%v)", info.Bytes, size, err))
		}
		select {
		case <-ctx.Done():
			return pathErr("commit", w.path, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// Cancel deletes the segments and the state object.
func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return pathErr("cancel", w.path, errClosed)
	}
	w.done = true
	w.release()
	w.tail = 0 // discarded, not unsent
	if err := w.d.discard(ctx, w.d.stateObject(w.path), w.state); err != nil {
		return mapErr("cancel", w.path, err)
	}
	return nil
}
