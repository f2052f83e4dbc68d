package azure

import (
	"bytes"

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
	id := blockID{kind: kindData, started: w.started, index: len(w.blocks) + w.flight.Len()}.String()
	w.staged = true
	next, err := w.flight.Send(w.buf, func(b []byte) (string, error) {
		_, err := w.bb.StageBlock(w.stageCtx, id, streaming.NopCloser(bytes.NewReader(b)), nil)
		return id, err
	})
	w.buf = next
	return err
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
