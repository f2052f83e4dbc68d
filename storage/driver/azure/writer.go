package azure

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/inflight"
)

// A block ID is 24 bytes before base64 (Azure wants every ID of a blob to
// have one length): "berth", a kind, the Unix second the write started,
// and the block's index. The index orders the blocks of a resumed write
// without any state kept elsewhere; the start time is what Unfinished
// reports. Kind 'd' is data; kind 'e' marks a write closed before its
// first byte, so that it exists to be resumed, and is never committed.
const (
	idPrefix  = "berth"
	kindData  = 'd'
	kindEmpty = 'e'
	idLen     = len(idPrefix) + 1 + 10 + 8
)

type blockID struct {
	kind    byte
	started int64 // Unix seconds
	index   int
}

func (b blockID) String() string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s%c%010d%08d", idPrefix, b.kind, b.started, b.index))
}

// parseBlockID reports false for IDs Berth did not make.
func parseBlockID(s string) (blockID, bool) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != idLen || string(raw[:len(idPrefix)]) != idPrefix {
		return blockID{}, false
	}
	r := raw[len(idPrefix):]
	started, err1 := strconv.ParseInt(string(r[1:11]), 10, 64)
	index, err2 := strconv.Atoi(string(r[11:]))
	if (r[0] != kindData && r[0] != kindEmpty) || err1 != nil || err2 != nil {
		return blockID{}, false
	}
	return blockID{kind: r[0], started: started, index: index}, true
}

// pending is what the uncommitted block list of a blob says of a write.
type pending struct {
	exists  bool     // some uncommitted block, Berth's or not
	foreign bool     // a block Berth did not make
	data    []string // data block IDs in order
	size    int64
	started time.Time
}

// pendingWrite reads the uncommitted block list of the blob name.
func (d *Driver) pendingWrite(ctx context.Context, name string) (pending, error) {
	var p pending
	resp, err := d.c.NewBlockBlobClient(name).GetBlockList(ctx, blockblob.BlockListTypeUncommitted, nil)
	if err != nil {
		if isNotFound(err) {
			return p, nil
		}
		return p, err
	}
	type block struct {
		id   blockID
		name string
		size int64
	}
	var blocks []block
	for _, b := range resp.UncommittedBlocks {
		if b == nil || b.Name == nil {
			continue
		}
		p.exists = true
		id, ok := parseBlockID(*b.Name)
		if !ok {
			p.foreign = true
			continue
		}
		if p.started.IsZero() || time.Unix(id.started, 0).Before(p.started) {
			p.started = time.Unix(id.started, 0).UTC()
		}
		if id.kind == kindData {
			var size int64
			if b.Size != nil {
				size = *b.Size
			}
			blocks = append(blocks, block{id, *b.Name, size})
		}
	}
	slices.SortFunc(blocks, func(a, b block) int { return a.id.index - b.id.index })
	for i, b := range blocks {
		if b.id.index != i {
			// A writer that died with blocks in flight may have staged
			// later blocks past one that never arrived: the write goes on
			// after the blocks before the gap, restaging the later
			// indexes; blocks left out of the committed list are dropped.
			break
		}
		p.data = append(p.data, b.name)
		p.size += b.size
	}
	return p, nil
}

// writer stages a block each time its buffer fills (in the background,
// see blocks.go; cut smaller when the round's length is announced, see
// plan.go), and the short tail at Close. Memory is one chunksize
// buffer from the driver's pool, and up to writeconcurrency while
// writememory allows, given back by Commit, Cancel or Close.
type writer struct {
	d    *Driver
	ctx  context.Context // for Write and Close, which take none
	path string
	bb   *blockblob.Client

	started int64    // Unix seconds, shared by every block of the write
	blocks  []string // staged data block IDs, in order
	staged  bool     // some block, data or marker, may be staged
	size    int64
	buf     []byte // nil once back in the pool

	closed, done bool
	err          error // a failed stage poisons the writer
	// reopenable is set by a Close that succeeded, until Reopen.
	reopenable bool

	// flight holds the blocks being staged; a block records itself in
	// blocks once staged.
	flight   *inflight.Queue[string]
	stageCtx context.Context
	stop     context.CancelFunc

	// planned blocks of planSize bytes come before blocks go back to
	// chunksize (see plan.go).
	planned  int
	planSize int64
}

// Writer implements driver.Driver. One Get Block List tells whether an
// unfinished write exists: a fresh writer discards it, an appending one
// continues after its last block.
func (d *Driver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	name := d.name(path)
	p, err := d.pendingWrite(ctx, name)
	if err != nil {
		return nil, mapErr("writer", path, err)
	}
	w := &writer{
		d:       d,
		ctx:     ctx,
		path:    path,
		bb:      d.c.NewBlockBlobClient(name),
		started: time.Now().Unix(),
	}
	switch {
	case append && (!p.exists || p.foreign):
		// Blocks from another tool cannot be ordered: not ours to resume.
		return nil, pathErr("writer", path, driver.ErrNotFound)
	case append:
		w.started = p.started.Unix()
		w.blocks = p.data
		w.size = p.size
		w.staged = true
	case p.exists:
		// Discarding commits an empty list, so a committed file at path
		// goes too; it was about to be replaced, and upload paths are
		// fresh in the registry.
		if err := d.discardBlocks(ctx, name); err != nil {
			return nil, mapErr("writer", path, err)
		}
	}
	w.start()
	return w, nil
}

// start gives a new writer its buffer and its queue of blocks in flight.
func (w *writer) start() {
	w.buf = w.d.bufs.Get()
	w.flight = inflight.New(w.d.bufs, w.d.memory, w.d.cfg.WriteConcurrency, w.landed)
	w.stageCtx, w.stop = context.WithCancel(w.ctx)
}

// release gives the buffer back to the pool the first time it runs:
// Commit, Cancel, Close and a failed stage all call it. Nothing touches
// the buffer after, as Write, Close and Commit refuse a writer that is
// closed, done or poisoned, and Cancel only releases it.
func (w *writer) release() {
	if w.buf != nil {
		w.d.bufs.Put(w.buf)
		w.buf = nil
	}
	w.flight.Release()
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
	if len(p) > 0 {
		w.flight.Writing()
	}
	n := 0
	for len(p) > 0 {
		end := w.blockEnd()
		k := copy(w.buf[len(w.buf):end], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		n += k
		w.size += int64(k)
		if len(w.buf) == end {
			if w.planned > 0 {
				w.planned--
			}
			if err := w.send(); err != nil {
				if w.err == nil {
					w.err = mapErr("write", w.path, err)
				}
				// Nothing more is sent from a poisoned writer, and its
				// caller may drop it without Close: the buffers go back now.
				w.stop()
				_ = w.settle()
				w.release()
				return n, w.err
			}
		}
	}
	return n, nil
}

// stage puts one block; a data block joins the list Commit will commit.
func (w *writer) stage(ctx context.Context, kind byte, data []byte) error {
	id := blockID{kind: kind, started: w.started, index: len(w.blocks)}.String()
	w.staged = true
	if _, err := w.bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(data)), nil); err != nil {
		w.err = mapErr("write", w.path, err)
		// Nothing more is sent from a poisoned writer, and its caller may
		// drop it without Close: the buffer goes back now.
		w.release()
		return w.err
	}
	if kind == kindData {
		w.blocks = append(w.blocks, id)
	}
	return nil
}

func (w *writer) Size() int64 { return w.size }

// Close stages what the buffer holds as a short block, which Azure
// allows anywhere in a block list, so a resumed write appends after it.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	if w.closed {
		return pathErr("close", w.path, errClosed)
	}
	w.closed = true
	defer w.release()
	defer w.stop()
	if err := w.sendTail(w.stageCtx, "close"); err != nil {
		return err
	}
	if !w.staged {
		// Nothing on the server yet: a one-byte marker block makes the
		// empty write exist for Writer(path, true).
		if err := w.stage(w.ctx, kindEmpty, []byte{0}); err != nil {
			return err
		}
	}
	w.reopenable = true
	return nil
}

// Commit commits the staged data blocks. A write that never staged a
// block is one Put Blob instead.
func (w *writer) Commit(ctx context.Context) error {
	if err := w.check(); err != nil {
		return err
	}
	w.done = true
	defer w.release()
	defer w.stop()
	if !w.staged {
		// Nothing staged nor in flight: one Put Blob.
		_, err := w.bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(w.buf)), nil)
		if err != nil {
			return mapErr("commit", w.path, err)
		}
		return nil
	}
	if err := w.sendTail(ctx, "commit"); err != nil {
		return err
	}
	w.release()
	// Blocks left out of the list, markers included, are dropped by Azure.
	if _, err := w.bb.CommitBlockList(ctx, w.blocks, nil); err != nil {
		return mapErr("commit", w.path, err)
	}
	return nil
}

// Cancel discards the staged blocks, and with them the blob.
func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return pathErr("cancel", w.path, errClosed)
	}
	w.done = true
	// Blocks in flight are let end (each has its deadline) before the
	// discard, not cancelled: a Put Block cancelled after its body went
	// out was still staged by the service after the discard, and the
	// uncommitted blob stayed (seen in CI on Azurite).
	_ = w.settle()
	w.stop()
	w.release()
	if !w.staged {
		return nil
	}
	if err := w.d.discardBlocks(ctx, w.d.name(w.path)); err != nil {
		return mapErr("cancel", w.path, err)
	}
	return nil
}
