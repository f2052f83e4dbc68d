package notifications

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// pullEvent is a blob pull numbered i, with a User-Agent as long as a
// hostile client may send.
func pullEvent(i int) Event {
	return Event{
		ID:      fmt.Sprintf("pull-%05d", i),
		Action:  ActionPull,
		Target:  Target{Repository: "library/test"},
		Request: RequestRecord{Method: http.MethodGet, UserAgent: string(make([]byte, 400))},
	}
}

// TestPullFloodEvictsNoChange plays a hostile client that pulls in a loop
// while the endpoint is down, before and after a push, a mount and a
// delete: the spool fills with pulls, and when the endpoint comes back
// every push, mount and delete arrives, in order, whatever was dropped.
func TestPullFloodEvictsNoChange(t *testing.T) {
	down := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int { return http.StatusServiceUnavailable })
	ep := fastEndpoint(t, "a", down.srv.URL)
	ep.Backoff, ep.MaxBackoff = time.Hour, time.Hour
	ep.SpoolMaxBytes = 16 << 10 // about 25 pulls
	cfg := Config{Endpoints: []EndpointConfig{ep}}
	n, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	flood := func(from int) {
		for i := from; i < from+500; i++ {
			publish(t, n, pullEvent(i))
		}
	}
	changes := []Event{
		{ID: "push-1", Action: ActionPush, Target: Target{Repository: "library/test", Tag: "v1"}},
		{ID: "mount-1", Action: ActionMount, Target: Target{Repository: "library/b", FromRepository: "library/test"}},
		{ID: "delete-1", Action: ActionDelete, Target: Target{Repository: "library/test", Tag: "v1"}},
	}
	publish(t, n, changes[0])
	flood(0)
	publish(t, n, changes[1])
	flood(500)
	publish(t, n, changes[2])
	flood(1000)
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := n.Metrics()[0]
	if m.PendingBytes > ep.SpoolMaxBytes {
		t.Errorf("spool holds %d bytes, over its %d", m.PendingBytes, ep.SpoolMaxBytes)
	}
	if m.Dropped == 0 || m.DroppedByAction[ActionPull] != m.Dropped {
		t.Errorf("metrics %+v: want only pulls dropped", m)
	}

	up := newReceiver(t, nil)
	cfg.Endpoints[0].URL, cfg.Endpoints[0].Backoff = up.srv.URL, time.Millisecond
	n2 := openNotifier(t, cfg)
	var got []string
	for _, id := range up.nextIDs(t, m.Pending) {
		if !slices.Contains(got, id) && id[:5] != "pull-" {
			got = append(got, id)
		}
	}
	want := []string{"push-1", "mount-1", "delete-1"}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v of the changes, want %v", got, want)
	}
	waitFor(t, func() bool { return n2.Metrics()[0].Pending == 0 })
}

// TestBurstOfPullsIsOneWrite publishes five hundred pulls and then a push:
// the push's write carries every pull with it, in one file per class and
// one sync of each and of the directory, where each event used to cost
// two syncs of its own.
func TestBurstOfPullsIsOneWrite(t *testing.T) {
	rc := newReceiver(t, nil)
	ep := fastEndpoint(t, "a", rc.srv.URL)
	ep.pullDelay = time.Hour // only the push starts the write
	n := openNotifier(t, Config{Endpoints: []EndpointConfig{ep}})
	const pulls = 500
	for i := range pulls {
		publish(t, n, pullEvent(i))
	}
	publish(t, n, pushEvent(0))
	if m := n.Metrics()[0]; m.SpoolWrites != 1 || m.SpoolSyncs != 3 {
		t.Fatalf("metrics %+v: want the burst written once, with 3 syncs", m)
	}
	got := rc.nextIDs(t, pulls+1)
	want := make([]string, 0, pulls+1)
	for i := range pulls {
		want = append(want, pullEvent(i).ID)
	}
	want = append(want, pushEvent(0).ID)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d events out of order", len(got))
	}
}

// TestPullsAreWrittenWithoutAPush publishes only pulls: they reach the
// spool and the endpoint after the pull delay, with nothing else to
// start the write.
func TestPullsAreWrittenWithoutAPush(t *testing.T) {
	rc := newReceiver(t, nil)
	n := openNotifier(t, Config{Endpoints: []EndpointConfig{fastEndpoint(t, "a", rc.srv.URL)}})
	for i := range 20 {
		publish(t, n, pullEvent(i))
	}
	got := rc.nextIDs(t, 20)
	for i, id := range got {
		if id != pullEvent(i).ID {
			t.Fatalf("delivered %v", got)
		}
	}
}

// TestCloseWritesWaitingPulls closes right after publishing pulls, with
// the endpoint down: they are in the spool for the next start.
func TestCloseWritesWaitingPulls(t *testing.T) {
	down := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int { return http.StatusServiceUnavailable })
	ep := fastEndpoint(t, "a", down.srv.URL)
	ep.pullDelay = time.Hour
	cfg := Config{Endpoints: []EndpointConfig{ep}}
	n, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		publish(t, n, pullEvent(i))
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	up := newReceiver(t, nil)
	cfg.Endpoints[0].URL = up.srv.URL
	openNotifier(t, cfg)
	if got := up.nextIDs(t, 5); got[0] != pullEvent(0).ID || got[4] != pullEvent(4).ID {
		t.Fatalf("after reopening got %v", got)
	}
}

// TestSpoolOfOneFilePerEventIsRead starts on a spool written by an
// earlier Berth, one file per event: its events are sent first, in
// order, and new ones after them.
func TestSpoolOfOneFilePerEventIsRead(t *testing.T) {
	spool := t.TempDir()
	dir := filepath.Join(spool, "a")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		name := filepath.Join(dir, fmt.Sprintf("%020d.json", 7+i))
		if err := os.WriteFile(name, mustJSON(t, pushEvent(i)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rc := newReceiver(t, nil)
	n := openNotifier(t, Config{Spool: spool, Endpoints: []EndpointConfig{{Name: "a", URL: rc.srv.URL}}})
	publish(t, n, pushEvent(3))
	if got := rc.nextIDs(t, 4); !slices.Equal(got, ids(0, 4)) {
		t.Fatalf("got %v, want %v", got, ids(0, 4))
	}
	// Each file goes once its event was delivered.
	waitFor(t, func() bool {
		left, _ := filepath.Glob(filepath.Join(dir, "0*"))
		return len(left) == 0
	})
}

// TestPullsWaitingForAWriteAreCapped holds the write back (as a stalled
// disk would) while a client pulls in a loop: the pulls waiting in memory
// stop growing at their cap, the rest are dropped and counted, and a push
// that comes after is still taken and written.
func TestPullsWaitingForAWriteAreCapped(t *testing.T) {
	down := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int { return http.StatusServiceUnavailable })
	ep := fastEndpoint(t, "a", down.srv.URL)
	ep.pullDelay = time.Hour
	n := openNotifier(t, Config{Endpoints: []EndpointConfig{ep}})
	size := len(mustJSON(t, pullEvent(0)))
	pulls := 2*maxBufferedPulls/size + 1
	for i := range pulls {
		publish(t, n, pullEvent(i))
	}
	m := n.Metrics()[0]
	if kept := pulls - int(m.Dropped); kept > maxBufferedPulls/size+1 || m.DroppedByAction[ActionPull] != m.Dropped || m.Dropped == 0 {
		t.Fatalf("metrics %+v: want at most %d pulls kept, the rest dropped", m, maxBufferedPulls/size+1)
	}
	publish(t, n, pushEvent(0))
	if m := n.Metrics()[0]; m.SpoolWrites != 1 || m.SpoolErrors != 0 {
		t.Fatalf("metrics %+v: want the push and the kept pulls written", m)
	}
}

// TestConcurrentPublishersShareWrites publishes pushes and pulls from
// several goroutines at once: every event arrives once, each goroutine's
// in the order it published them. How many writes the pushes shared
// depends on timing, so it is only logged.
func TestConcurrentPublishersShareWrites(t *testing.T) {
	const workers, each = 8, 40
	rc := newReceiver(t, nil)
	n := openNotifier(t, Config{Endpoints: []EndpointConfig{fastEndpoint(t, "a", rc.srv.URL)}})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ev := Event{ID: fmt.Sprintf("w%d-%03d", w, i), Action: ActionPush}
				if i%2 == 1 {
					ev.Action = ActionPull
				}
				if err := n.Publish(context.Background(), ev); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	last := map[string]string{}
	seen := map[string]bool{}
	for _, id := range rc.nextIDs(t, workers*each) {
		w, _, _ := strings.Cut(id, "-")
		if seen[id] || id < last[w] {
			t.Fatalf("event %s after %s, or twice", id, last[w])
		}
		seen[id], last[w] = true, id
	}
	m := n.Metrics()[0]
	t.Logf("%d pushes and %d pulls in %d writes", workers*each/2, workers*each/2, m.SpoolWrites)
}
