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
	rd := &spoolReader{s: e.spool}
	defer rd.close()
	for {
		en, ok := e.head()
		if !ok {
			select {
			case <-e.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		data, err := rd.read(en)
		if err == nil && !json.Valid(data) {
			err = errors.New("not JSON")
		}
		if err != nil {
			e.settle(en.seq, err)
			continue
		}
		body := envelope(data)
		for {
			err := e.send(ctx, body)
			if err == nil {
				e.settle(en.seq, nil)
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
			if h, ok := e.head(); !ok || h.seq != en.seq {
				break
			}
		}
	}
}

// head is the oldest pending event: the older of the heads of the two
// queues.
func (e *endpoint) head() (entry, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case len(e.pulls) == 0 && len(e.changes) == 0:
		return entry{}, false
	case len(e.pulls) == 0:
		return e.changes[0], true
	case len(e.changes) == 0 || e.pulls[0].seq < e.changes[0].seq:
		return e.pulls[0], true
	}
	return e.changes[0], true
}

// popHead takes the event seq off its queue, if it is still a head (a
// full spool may have dropped it meanwhile), and returns the name of its
// file when no other event needs that any more. Called with mu held.
func (e *endpoint) popHead(seq uint64) (en entry, gone string, ok bool) {
	for _, q := range []*[]entry{&e.pulls, &e.changes} {
		if len(*q) > 0 && (*q)[0].seq == seq {
			en, *q = (*q)[0], (*q)[1:]
			e.bytes -= en.disk
			if en.seg.live--; en.seg.live == 0 {
				gone = en.seg.name
			}
			return en, gone, true
		}
	}
	return entry{}, "", false
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

// settle removes an event that was delivered (err nil) or cannot be sent
// (err says why: its file is gone, or unreadable).
func (e *endpoint) settle(seq uint64, err error) {
	e.mu.Lock()
	en, gone, ok := e.popHead(seq)
	streak := e.streak
	lost := ok && err != nil && !errors.Is(err, fs.ErrNotExist)
	switch {
	case err == nil:
		e.m.Delivered++
		e.streak = 0
	case lost:
		e.countDropped(en.action, 1)
		e.m.LastError, e.m.LastErrorAt = err.Error(), time.Now()
	}
	pending := len(e.pulls) + len(e.changes)
	e.mu.Unlock()
	if err == nil && streak >= e.cfg.Threshold {
		e.log.Info("notification endpoint recovered", "failures", streak, "pending", pending)
	}
	if lost {
		e.log.Error("notification event unreadable, dropped", "seq", seq, "error", err)
	}
	if gone == "" {
		return
	}
	if err := e.spool.remove(gone); err != nil {
		// Its events will be sent again after a restart; receivers
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
	streak, pending := e.streak, len(e.pulls)+len(e.changes)
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
