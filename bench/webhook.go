package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"
)

// webhook is a notification endpoint in the harness's process that
// accepts every event at once, as a healthy receiver would: what Berth
// pays for its events is then its own spool and sending, not a slow
// receiver.
type webhook struct {
	srv    *http.Server
	url    string
	events atomic.Int64 // requests received, for the record
}

func startWebhook() (*webhook, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &webhook{url: "http://" + ln.Addr().String() + "/events"}
	w.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.events.Add(1)
		}),
	}
	go func() { _ = w.srv.Serve(ln) }()
	return w, nil
}

func (w *webhook) close() { _ = w.srv.Close() }

// webhookQuiet is how long the webhook must receive nothing to count as
// drained: a sender with a backlog on loopback sends far more often.
const webhookQuiet = 500 * time.Millisecond

// drained waits until the webhook has received nothing for webhookQuiet
// (at most five minutes) and returns when it received the last event,
// counted from the call.
func (w *webhook) drained(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	last, lastAt := w.events.Load(), start
	for time.Since(lastAt) < webhookQuiet {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if n := w.events.Load(); n != last {
			last, lastAt = n, time.Now()
		}
		if time.Since(start) > 5*time.Minute {
			return 0, fmt.Errorf("webhook still receiving events after %s", time.Since(start).Round(time.Second))
		}
	}
	return lastAt.Sub(start), nil
}

// config is the notifications section of a server that sends every event
// to w, with its spool in the server's directory.
func (w *webhook) config(dir string) string {
	return fmt.Sprintf(`notifications:
  spool: %s
  endpoints:
    - name: bench
      url: %s
      timeout: 5s
`, filepath.Join(dir, "spool"), w.url)
}

// webhookSpecs are the two servers of a webhook scenario: Berth without
// an endpoint, in Distribution's column, and Berth with one.
func (h *harness) webhookSpecs() [2]serverSpec {
	b := h.specs[1]
	return [2]serverSpec{
		{name: "berth", bin: b.bin},
		{name: "berth+webhook", bin: b.bin, extra: h.webhook.config},
	}
}
