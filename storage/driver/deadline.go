package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrTimeout is the error of a call the backend did not answer within its
// deadline (see Timeouts). The driver's own error is wrapped beside it.
var ErrTimeout = errors.New("backend did not answer in time")

// Timeouts bound every call the wrapper passes to a driver, by class of
// operation, so that a backend that stops answering (a frozen process
// with its connections open, a black-holed network) fails a request
// instead of holding it for as long as the client waits. Streams are
// bounded by progress, not in total: each Read or Write may wait this
// long for the backend, while the time a client takes between them does
// not count. A zero field takes its default.
type Timeouts struct {
	// Metadata bounds calls that move little data: Stat, List, PutContent
	// and PutScratch (manifests, links, upload state), RedirectURL,
	// OpenFile, opening a Reader or Writer, and each step of a Walk.
	Metadata time.Duration
	// Read bounds each Read of a reader: how long the backend may send
	// nothing.
	Read time.Duration
	// Write bounds each Write and Close of a writer, which may send a
	// whole part to the backend.
	Write time.Duration
	// Commit bounds calls whose time grows with the data they touch on
	// the backend's side: Commit, CommitTo and Cancel of a writer, Move
	// (a server-side copy), Delete (recursive) and Unfinished.
	Commit time.Duration
}

// The defaults leave room for a slow backend under load and a large
// server-side copy, and still answer long before a client gives up.
const (
	defaultMetadataTimeout = 30 * time.Second
	defaultReadTimeout     = time.Minute
	defaultWriteTimeout    = 2 * time.Minute
	defaultCommitTimeout   = 5 * time.Minute
)

// DefaultTimeouts returns the timeouts Wrap applies when none are given.
func DefaultTimeouts() Timeouts {
	return Timeouts{}.withDefaults()
}

func (t Timeouts) withDefaults() Timeouts {
	if t.Metadata <= 0 {
		t.Metadata = defaultMetadataTimeout
	}
	if t.Read <= 0 {
		t.Read = defaultReadTimeout
	}
	if t.Write <= 0 {
		t.Write = defaultWriteTimeout
	}
	if t.Commit <= 0 {
		t.Commit = defaultCommitTimeout
	}
	return t
}

// WithTimeouts returns d wrapped (see Wrap) with t in place of the default
// timeouts. On a driver Wrap or Instrument returned it replaces their
// timeouts instead of adding a second wrapper.
func WithTimeouts(d Driver, t Timeouts) Driver {
	if w, ok := d.(*wrapped); ok {
		out := *w
		out.t = t.withDefaults()
		return &out
	}
	return &wrapped{d: d, t: t.withDefaults()}
}

// within runs under ctx bounded by limit; done reports err, tagged with
// ErrTimeout when the limit (not ctx's own cancellation) stopped it.
func within(ctx context.Context, limit time.Duration) (context.Context, func(err error) error) {
	ctx, cancel := context.WithTimeoutCause(ctx, limit, ErrTimeout)
	return ctx, func(err error) error {
		err = timedOut(ctx, limit, err)
		cancel()
		return err
	}
}

// timedOut tags err with ErrTimeout when ctx was cancelled by a deadline
// of ours: the driver's error then only says how it noticed (a cancelled
// request, a closed connection).
func timedOut(ctx context.Context, limit time.Duration, err error) error {
	if err == nil || errors.Is(err, ErrTimeout) || !errors.Is(context.Cause(ctx), ErrTimeout) {
		return err
	}
	return fmt.Errorf("%w (%s): %w", ErrTimeout, limit, err)
}

// watchdog cancels a context that outlives one call (a reader's, a
// writer's) when one call on it takes longer than its limit. It is armed
// only while a call runs.
type watchdog struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

func newWatchdog(ctx context.Context) *watchdog {
	ctx, cancel := context.WithCancelCause(ctx)
	wd := &watchdog{ctx: ctx, cancel: cancel}
	wd.timer = time.AfterFunc(time.Hour, func() { cancel(ErrTimeout) })
	wd.timer.Stop()
	return wd
}

// arm starts the clock for one call; the function it returns stops it and
// tags the call's error.
func (wd *watchdog) arm(limit time.Duration) func(err error) error {
	wd.timer.Reset(limit)
	return func(err error) error {
		wd.timer.Stop()
		return timedOut(wd.ctx, limit, err)
	}
}

// release ends the context once nothing uses it any more.
func (wd *watchdog) release() {
	wd.timer.Stop()
	wd.cancel(nil)
}

// idleReader bounds each Read of a backend reader by the read timeout.
type idleReader struct {
	r     io.ReadCloser
	wd    *watchdog
	limit time.Duration
	w     *wrapped
	path  string
}

func (r *idleReader) Read(p []byte) (int, error) {
	done := r.wd.arm(r.limit)
	n, err := r.r.Read(p)
	if terr := done(err); terr != err {
		// Only a timeout is tagged: io.EOF and the driver's own errors
		// pass as they are.
		return n, r.w.fail("read", r.path, terr)
	}
	return n, err
}

func (r *idleReader) Close() error {
	err := r.r.Close()
	r.wd.release()
	return err
}
