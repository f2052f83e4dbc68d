package notifications

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// delivery is one request a receiver got.
type delivery struct {
	contentType string
	header      http.Header
	body        []byte
	env         Envelope
}

// receiver is a real HTTP server on loopback that records what it is sent.
// respond decides each answer; it is called with the 1-based number of the
// request and may block.
type receiver struct {
	srv *httptest.Server
	got chan delivery // every request, accepted or not
	ok  chan delivery // requests answered 2xx

	mu sync.Mutex
	n  int
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan delivery, 1000), ok: make(chan delivery, 1000)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d := delivery{contentType: r.Header.Get("Content-Type"), header: r.Header.Clone(), body: b}
		if err := json.Unmarshal(b, &d.env); err != nil {
			t.Errorf("receiver: body is not an envelope: %v: %s", err, b)
		}
		rc.mu.Lock()
		rc.n++
		n := rc.n
		rc.mu.Unlock()
		rc.got <- d
		status := http.StatusOK
		if respond != nil {
			status = respond(n, w, r)
		}
		if status == 0 {
			return // respond wrote (or hijacked) the response itself
		}
		w.WriteHeader(status)
		if status >= 200 && status <= 299 {
			rc.ok <- d
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// next waits for the next accepted delivery. The deadline only turns a
// hang into a failure; no test depends on how long delivery takes.
func (rc *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-rc.ok:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("receiver: no delivery")
		return delivery{}
	}
}

// nextIDs waits for n accepted deliveries and returns their event ids.
func (rc *receiver) nextIDs(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		d := rc.next(t)
		for _, ev := range d.env.Events {
			ids = append(ids, ev.ID)
		}
	}
	return ids
}

// fastEndpoint is an endpoint that retries without delay worth noticing.
func fastEndpoint(t *testing.T, name, url string) EndpointConfig {
	return EndpointConfig{
		Name: name, URL: url,
		Timeout: 5 * time.Second, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Spool: t.TempDir(),
	}
}

func openNotifier(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	n, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// pushEvent is a blob push event numbered i.
func pushEvent(i int) Event {
	return Event{
		ID:     fmt.Sprintf("event-%04d", i),
		Action: ActionPush,
		Target: Target{Repository: "library/test", Tag: fmt.Sprint(i)},
	}
}

func publish(t *testing.T, n *Notifier, evs ...Event) {
	t.Helper()
	if err := n.Publish(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
}

func ids(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, pushEvent(i).ID)
	}
	return s
}

// newReceiverB is an endpoint URL that accepts everything, for benchmarks.
func newReceiverB(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}
