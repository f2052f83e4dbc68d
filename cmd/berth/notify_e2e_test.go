package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/notifications"
	"github.com/opencontainers/go-digest"
)

// TestServeSIGKILLLosesNoNotification pushes blobs to berth serve while its
// endpoint accepts two events and holds the third, kills berth with
// SIGKILL, and starts it again on the same spool: every push's event
// arrives.
func TestServeSIGKILLLosesNoNotification(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs berth")
	}
	const pushes, accepted = 12, 2
	release := make(chan struct{})
	var (
		mu    sync.Mutex
		n     int
		first []notifications.Event
	)
	firstGot := make(chan struct{}, 100)
	hook1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		held := n > accepted
		if !held {
			first = append(first, decodeEvents(t, r.Body)...)
		}
		mu.Unlock()
		firstGot <- struct{}{}
		if held {
			<-release // berth dies with this one in flight
		}
	}))
	defer hook1.Close()
	defer close(release)
	second := make(chan notifications.Event, 100)
	hook2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, ev := range decodeEvents(t, r.Body) {
			second <- ev
		}
	}))
	defer hook2.Close()

	root, spool := t.TempDir(), t.TempDir()
	config := func(url string) string {
		return "version: 0.1\nlog: {level: debug}\nstorage:\n  filesystem:\n    rootdirectory: " + root +
			"\nnotifications:\n  spool: " + spool + "\n  endpoints:\n    - name: hook\n      url: " + url + "\n      backoff: 10ms\n      timeout: 1h\n"
	}
	addr, p := testenv.StartBerthProcess(t, config(hook1.URL))
	pushed := map[digest.Digest]bool{}
	for i := range pushes {
		blob := []byte("blob " + string(rune('a'+i)))
		d := digest.FromBytes(blob)
		resp, err := http.Post("http://"+addr+"/v2/e2e/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("push: %s", resp.Status)
		}
		pushed[d] = true
	}
	for range accepted + 1 {
		select {
		case <-firstGot:
		case <-time.After(30 * time.Second):
			t.Fatalf("berth sent no notification; log:\n%s", p.Log())
		}
	}
	if err := p.Cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-p.Done()

	testenv.StartBerthProcess(t, config(hook2.URL))
	seen := map[string]bool{}
	got := map[digest.Digest]bool{}
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range first {
		seen[ev.ID] = true
		got[ev.Target.Digest] = true
	}
	for len(got) < pushes {
		select {
		case ev := <-second:
			seen[ev.ID] = true
			got[ev.Target.Digest] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("after restart %d of %d pushes notified", len(got), pushes)
		}
	}
	for d := range pushed {
		if !got[d] {
			t.Errorf("push of %s never notified", d)
		}
	}
	t.Logf("%d pushes, %d distinct event ids delivered, %d before SIGKILL", pushes, len(seen), len(first))
}

func decodeEvents(t *testing.T, body io.Reader) []notifications.Event {
	var env notifications.Envelope
	if err := json.NewDecoder(body).Decode(&env); err != nil {
		t.Errorf("hook: %v", err)
	}
	return env.Events
}
