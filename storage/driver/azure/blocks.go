package azure

import (
	"bytes"
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
)

// A full block is staged in the background while the writer fills the
// next buffer, up to writeconcurrency blocks at a time and within the
// driver's writememory (see package inflight). Block indexes are fixed
// when a block is sent, so the committed list is in write order however
// staging finishes.

// send stages the full buffer as the next data block in the background
// and gives the writer an empty buffer.
func (w *writer) send() error {
	if err := w.flight.Reap(); err != nil {
		return err
	}
	next, err := w.flight.Send(w.buf, w.stageNext(w.stageCtx))
	w.buf = next
	return err
}

// sendTail stages what the buffer holds as the write's last block, under
// ctx, beside the blocks still in flight (not after them: the last block
// of a planned round is as large as the others), and waits for them all.
// The buffer goes with it: the writer is done writing.
func (w *writer) sendTail(ctx context.Context, op string) error {
	if len(w.buf) > 0 && w.err == nil {
		if err := w.flight.Reap(); err != nil {
			w.err = mapErr(op, w.path, err)
		} else {
			w.flight.SendLast(w.buf, w.stageNext(ctx))
			w.buf = nil
		}
	}
	return w.settle()
}

// stageNext returns the staging of the next data block, its index fixed
// now.
func (w *writer) stageNext(ctx context.Context) func([]byte) (string, error) {
	id := blockID{kind: kindData, started: w.started, index: len(w.blocks) + w.flight.Len()}.String()
	w.staged = true
	return func(b []byte) (string, error) {
		_, err := w.bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(b)), nil)
		return id, err
	}
}

// landed records a block that was staged, in the order blocks were sent.
func (w *writer) landed(id string) { w.blocks = append(w.blocks, id) }

// settle waits for every block in flight; a failed one poisons the
// writer.
func (w *writer) settle() error {
	if err := w.flight.Settle(); err != nil && w.err == nil {
		w.err = mapErr("write", w.path, err)
	}
	return w.err
}
