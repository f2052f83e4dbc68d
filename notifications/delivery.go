package notifications

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"time"
)

// run delivers the spooled events one at a time, oldest first, retrying
// each until the endpoint answers 2xx. It is the endpoint's only sender,
// which is what keeps its events in order.
func (e *endpoint) run(ctx context.Context) {
	defer close(e.done)
	for {
		seq, ok := e.head()
		if !ok {
			select {
			case <-e.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		data, err := e.spool.read(seq)
		if err == nil && !json.Valid(data) {
			err = errors.New("not JSON")
		}
		if err != nil {
			e.discard(seq, err)
			continue
		}
		body := envelope(data)
		for {
			err := e.send(ctx, body)
			if err == nil {
				e.ack(seq)
				break
			}
			if ctx.Err() != nil {
				return
			}
			wait := e.failed(err)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			// A full spool may have dropped this event while it waited.
			if h, ok := e.head(); !ok || h != seq {
				break
			}
		}
	}
}

// head is the sequence number of the oldest pending event.
func (e *endpoint) head() (uint64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.pending) == 0 {
		return 0, false
	}
	return e.pending[0].seq, true
}

// envelope wraps one spooled event, already JSON, as Distribution 3 sends
// it: one event per request.
func envelope(event []byte) []byte {
	b := make([]byte, 0, len(event)+14)
	b = append(b, `{"events":[`...)
	b = append(b, event...)
	return append(b, "]}"...)
}

// send makes one delivery attempt.
func (e *endpoint) send(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range e.cfg.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", e.cfg.MediaType)
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	// Reading what little the endpoint says lets the connection be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}

// ack removes a delivered event.
func (e *endpoint) ack(seq uint64) {
	e.mu.Lock()
	if len(e.pending) > 0 && e.pending[0].seq == seq {
		e.bytes -= e.pending[0].size
		e.pending = e.pending[1:]
	}
	e.m.Delivered++
	streak := e.streak
	e.streak = 0
	pending := len(e.pending)
	e.mu.Unlock()
	if streak >= e.cfg.Threshold {
		e.log.Info("notification endpoint recovered", "failures", streak, "pending", pending)
	}
	if err := e.spool.remove(seq); err != nil {
		// The event will be sent again after a restart; receivers
		// de-duplicate by id.
		e.log.Error("notification spool remove failed", "error", err)
	}
}

// failed records a failed attempt and returns how long to wait before the
// next one.
func (e *endpoint) failed(err error) time.Duration {
	e.mu.Lock()
	e.m.Failed++
	e.m.LastError, e.m.LastErrorAt = err.Error(), time.Now()
	e.streak++
	streak, pending := e.streak, len(e.pending)
	e.mu.Unlock()
	wait := backoff(e.cfg.Backoff, e.cfg.MaxBackoff, streak)
	switch {
	case streak == e.cfg.Threshold:
		e.log.Warn("notification endpoint failing", "failures", streak, "pending", pending, "retry_in", wait, "error", err)
	case streak < e.cfg.Threshold:
		e.log.Debug("notification delivery failed", "failures", streak, "pending", pending, "retry_in", wait, "error", err)
	}
	return wait
}

// discard drops an event whose spooled file cannot be sent: gone (an
// operator removed it) or unreadable.
func (e *endpoint) discard(seq uint64, err error) {
	e.mu.Lock()
	if len(e.pending) > 0 && e.pending[0].seq == seq {
		e.bytes -= e.pending[0].size
		e.pending = e.pending[1:]
	}
	gone := errors.Is(err, fs.ErrNotExist)
	if !gone {
		e.m.Dropped++
		e.m.LastError, e.m.LastErrorAt = err.Error(), time.Now()
	}
	e.mu.Unlock()
	if gone {
		return
	}
	e.log.Error("notification event unreadable, dropped", "file", fileName(seq), "error", err)
	_ = e.spool.remove(seq)
}

// backoff is base doubled for each failure in a row after the first,
// capped.
func backoff(base, limit time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// redactURL masks a password in an endpoint's URL for logs and metrics.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}
