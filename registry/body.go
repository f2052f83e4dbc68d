package registry

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// requestBody wraps every request body, once, in ServeHTTP. It counts what
// the handler reads, for the log line and the metrics, and with an idle
// timeout it keeps the connection's read deadline ahead of the reads: a
// client that stops sending mid-body ends its request, instead of holding
// a goroutine, an upload's file and a buffer for as long as it likes. What
// arrived before the stall has been handed to the handler, which keeps it
// (an upload session stays resumable at that offset).
type requestBody struct {
	io.ReadCloser
	n int64

	// rc moves the read deadline; nil without an idle timeout, or when
	// the connection cannot set one.
	rc   *http.ResponseController
	idle time.Duration
	// armed is when the deadline was last moved, zero while none is set.
	armed time.Time
	// timedOut is set when a read failed on the idle deadline; done when
	// the body was read to its end.
	timedOut, done bool
}

func newRequestBody(w http.ResponseWriter, body io.ReadCloser, idle time.Duration) *requestBody {
	b := &requestBody{ReadCloser: body}
	if idle > 0 {
		b.rc, b.idle = http.NewResponseController(w), idle
	}
	return b
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.rc != nil {
		b.arm()
	}
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err == nil || b.rc == nil:
	case err == io.EOF:
		b.done = true
		// Past the body the deadline must not stay: on HTTP/1 the server
		// then watches the connection for a hang-up, and a deadline firing
		// there would cancel the request while it commits what it read.
		b.disarm()
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline stays: the server, discarding the rest of the body
		// after the handler, must not wait on the silent client either.
		b.timedOut = true
	}
	return n, err
}

// rearmAfter is the share of the idle timeout after which a read moves the
// deadline again. Moving it on every read costs a message to the
// connection's goroutine on HTTP/2; this way a client that sends nothing
// is cut off after between 7/8 of the idle timeout and all of it.
const rearmAfter = 8

func (b *requestBody) arm() {
	now := time.Now()
	if !b.armed.IsZero() && now.Sub(b.armed) < b.idle/rearmAfter {
		return
	}
	if err := b.rc.SetReadDeadline(now.Add(b.idle)); err != nil {
		// http.ErrNotSupported: a connection without deadlines (a test
		// recorder) gets no idle timeout.
		b.rc = nil
		return
	}
	b.armed = now
}

func (b *requestBody) disarm() {
	if b.armed.IsZero() {
		return
	}
	_ = b.rc.SetReadDeadline(time.Time{})
	b.armed = time.Time{}
}

// finish runs when the handler has returned. A body it did not read to
// the end (a refused request) is still read by the server, up to 256 KiB,
// before the answer goes out, to keep the connection; the deadline bounds
// that wait too, or a client that sends the headers of a refused PATCH
// and then nothing would hold the connection's goroutine for good.
func (b *requestBody) finish() {
	if b.rc == nil || b.done || b.timedOut {
		return
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
}
