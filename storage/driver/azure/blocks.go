package azure

import (
	"bytes"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
)

// A full block is staged in the background while the writer fills the
// next buffer, up to writeconcurrency blocks at a time: one connection to
// Azure carries tens of MB/s. Block indexes are fixed when a block is
// sent, so the committed list is in write order however staging finishes.
// Every writer has one buffer; more only while the driver's writememory
// allows, so many writers fall back to one block at a time.

// flight is one block being staged.
type flight struct {
	id   string
	buf  []byte
	done chan struct{}
	err  error
}

// send stages the full buffer as the next data block in the background
// and gives the writer an empty buffer.
func (w *writer) send() error {
	if err := w.reap(); err != nil {
		return err
	}
	f := &flight{
		id:   blockID{kind: kindData, started: w.started, index: len(w.blocks) + len(w.flights)}.String(),
		buf:  w.buf,
		done: make(chan struct{}),
	}
	w.staged = true
	w.flights = append(w.flights, f)
	w.buf = nil
	go func() {
		defer close(f.done)
		_, f.err = w.bb.StageBlock(w.stageCtx, f.id, streaming.NopCloser(bytes.NewReader(f.buf)), nil)
	}()
	next, err := w.nextBuf()
	w.buf = next
	return err
}

// nextBuf returns an empty buffer: a spare, a new one while fewer than
// writeconcurrency are held and writememory allows, or else the oldest
// block's once it is staged.
func (w *writer) nextBuf() ([]byte, error) {
	if n := len(w.spare); n > 0 {
		b := w.spare[n-1]
		w.spare = w.spare[:n-1]
		return b[:0], nil
	}
	if 1+w.extra < w.d.cfg.WriteConcurrency && w.d.memory.TryAcquire(1) {
		w.extra++
		return w.d.bufs.Get(), nil
	}
	err := w.collect()
	n := len(w.spare)
	b := w.spare[n-1]
	w.spare = w.spare[:n-1]
	return b[:0], err
}

// collect waits for the oldest block in flight and records it.
func (w *writer) collect() error {
	f := w.flights[0]
	<-f.done
	w.flights = w.flights[1:]
	w.spare = append(w.spare, f.buf[:0])
	if f.err != nil {
		return f.err
	}
	w.blocks = append(w.blocks, f.id)
	return nil
}

// reap records the oldest blocks already staged, without waiting.
func (w *writer) reap() error {
	for len(w.flights) > 0 {
		select {
		case <-w.flights[0].done:
			if err := w.collect(); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// settle waits for every block in flight; a failed one poisons the
// writer.
func (w *writer) settle() error {
	for len(w.flights) > 0 {
		if err := w.collect(); err != nil && w.err == nil {
			w.err = mapErr("write", w.path, err)
		}
	}
	return w.err
}
