// Package logbuf batches log output. A registry writes a line per request;
// at tens of thousands of requests a second, one write(2) per line was a
// sixth of the CPU a HEAD costs (see docs/benchmarks.md). The Writer
// gathers lines and writes them together, at most a short delay later,
// and writes at once the records that someone may be waiting to read.
package logbuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// maxBuffered is how much the Writer gathers before it writes without
// waiting for its delay.
const maxBuffered = 64 << 10

// Writer is an io.Writer that hands its input to out in batches. Each
// Write is kept whole and in order. It is safe for concurrent use.
type Writer struct {
	out   io.Writer
	delay time.Duration

	// flushMu orders the writes to out: a flush takes the buffer only
	// once it holds flushMu, so batches go out in the order they filled.
	flushMu sync.Mutex

	mu     sync.Mutex
	buf    []byte
	spare  []byte // the buffer the last flush wrote, kept for reuse
	timer  *time.Timer
	armed  bool // a flush is scheduled for what buf holds
	closed bool
}

// New returns a Writer that writes to out at most delay after a line
// arrives, or as soon as 64 KiB are waiting.
func New(out io.Writer, delay time.Duration) *Writer {
	return &Writer{out: out, delay: delay}
}

// Write buffers p. It fails only when it had to write out the buffer
// itself and out failed; after Close it writes through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		// After what Close wrote out, not before it.
		w.flushMu.Lock()
		defer w.flushMu.Unlock()
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= maxBuffered
	if !full && !w.armed {
		w.armed = true
		if w.timer == nil {
			w.timer = time.AfterFunc(w.delay, func() { _ = w.Flush() })
		} else {
			w.timer.Reset(w.delay)
		}
	}
	w.mu.Unlock()
	if full {
		// The writer that filled the buffer pays for the write: the
		// back-pressure a slow out should put on logging.
		if err := w.Flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes out what is buffered. What out refused is dropped, not
// retried: a log line is not worth holding a registry up for.
func (w *Writer) Flush() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	return w.flushLocked()
}

// flushLocked is Flush for a caller that holds flushMu.
func (w *Writer) flushLocked() error {
	w.mu.Lock()
	b := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.armed = false
	w.mu.Unlock()
	var err error
	if len(b) > 0 {
		_, err = w.out.Write(b)
	}
	if cap(b) <= 4*maxBuffered {
		// A burst of long lines should not pin a large buffer.
		w.mu.Lock()
		w.spare = b[:0]
		w.mu.Unlock()
	}
	return err
}

// Close writes out what is buffered; later writes go straight to out.
// It marks the Writer closed before it takes the buffer, so that a Write
// racing it is either in what Close writes out or written through after.
func (w *Writer) Close() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	return w.flushLocked()
}

// Urgent wraps h so that a record at level or above, and everything
// before it, is written out before Handle returns: warnings and errors
// are what an operator tails the log for.
func (w *Writer) Urgent(h slog.Handler, level slog.Leveler) slog.Handler {
	return urgentHandler{Handler: h, w: w, level: level}
}

type urgentHandler struct {
	slog.Handler
	w     *Writer
	level slog.Leveler
}

func (h urgentHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= h.level.Level() {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h urgentHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return urgentHandler{Handler: h.Handler.WithAttrs(attrs), w: h.w, level: h.level}
}

func (h urgentHandler) WithGroup(name string) slog.Handler {
	return urgentHandler{Handler: h.Handler.WithGroup(name), w: h.w, level: h.level}
}
