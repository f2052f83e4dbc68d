package notifications

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestEnvelopeIsDistributions posts each kind of event and checks the body
// byte for byte against the JSON CNCF Distribution sends for it.
func TestEnvelopeIsDistributions(t *testing.T) {
	ts := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
	req := RequestRecord{ID: "req-1", Addr: "10.0.0.1:5555", Host: "registry.local:5000", Method: "PUT", UserAgent: "docker/27"}
	src := SourceRecord{Addr: "host.local:5000", InstanceID: "inst-1"}
	const (
		dgst  = "sha256:3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5"
		mtOCI = "application/vnd.oci.image.manifest.v1+json"
	)
	common := `"request":{"id":"req-1","addr":"10.0.0.1:5555","host":"registry.local:5000","method":"PUT","useragent":"docker/27"},` +
		`"actor":{"name":"alice"},"source":{"addr":"host.local:5000","instanceID":"inst-1"}`
	tests := []struct {
		name   string
		action string
		target Target
		want   string
	}{
		{
			name: "blob push", action: ActionPush,
			target: Target{Descriptor: v1.Descriptor{MediaType: MediaTypeBlob, Digest: dgst, Size: 3}, Length: 3, Repository: "library/test",
				URL: "http://registry.local:5000/v2/library/test/blobs/" + dgst},
			want: `"target":{"mediaType":"application/octet-stream","digest":"` + dgst + `","size":3,"length":3,"repository":"library/test","url":"http://registry.local:5000/v2/library/test/blobs/` + dgst + `"}`,
		},
		{
			name: "manifest pull with references", action: ActionPull,
			target: Target{Descriptor: v1.Descriptor{MediaType: mtOCI, Digest: dgst, Size: 500}, Length: 500, Repository: "library/test",
				URL: "http://registry.local:5000/v2/library/test/manifests/" + dgst, Tag: "latest",
				References: []v1.Descriptor{{MediaType: "application/vnd.oci.image.config.v1+json", Digest: dgst, Size: 2}}},
			want: `"target":{"mediaType":"` + mtOCI + `","digest":"` + dgst + `","size":500,"length":500,"repository":"library/test","url":"http://registry.local:5000/v2/library/test/manifests/` + dgst + `","tag":"latest",` +
				`"references":[{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + dgst + `","size":2}]}`,
		},
		{
			name: "blob mount", action: ActionMount,
			target: Target{Descriptor: v1.Descriptor{MediaType: MediaTypeBlob, Digest: dgst, Size: 3}, Length: 3, Repository: "library/b", FromRepository: "library/a",
				URL: "http://registry.local:5000/v2/library/b/blobs/" + dgst},
			want: `"target":{"mediaType":"application/octet-stream","digest":"` + dgst + `","size":3,"length":3,"repository":"library/b","fromRepository":"library/a","url":"http://registry.local:5000/v2/library/b/blobs/` + dgst + `"}`,
		},
		{
			name: "manifest delete", action: ActionDelete,
			target: Target{Descriptor: v1.Descriptor{Digest: dgst}, Repository: "library/test"},
			want:   `"target":{"mediaType":"","digest":"` + dgst + `","size":0,"repository":"library/test"}`,
		},
		{
			name: "tag delete", action: ActionDelete,
			target: Target{Repository: "library/test", Tag: "latest"},
			want:   `"target":{"mediaType":"","digest":"","size":0,"repository":"library/test","tag":"latest"}`,
		},
	}
	rc := newReceiver(t, nil)
	ep := fastEndpoint(t, "a", rc.srv.URL)
	ep.Headers = http.Header{"Authorization": {"Bearer token"}}
	n := openNotifier(t, Config{Source: src, Endpoints: []EndpointConfig{ep}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			publish(t, n, Event{ID: "id-1", Timestamp: ts, Action: tt.action, Target: tt.target, Request: req, Actor: ActorRecord{Name: "alice"}})
			d := rc.next(t)
			want := `{"events":[{"id":"id-1","timestamp":"2006-01-02T15:04:05Z","action":"` + tt.action + `",` + tt.want + `,` + common + `}]}`
			if string(d.body) != want {
				t.Errorf("body\n%s\nwant\n%s", d.body, want)
			}
			if d.contentType != MediaTypeV2 {
				t.Errorf("Content-Type %q, want %q", d.contentType, MediaTypeV2)
			}
			if got := d.header.Get("Authorization"); got != "Bearer token" {
				t.Errorf("Authorization %q, want the configured header", got)
			}
		})
	}
}

func TestMediaTypeV1IsSentWhenConfigured(t *testing.T) {
	rc := newReceiver(t, nil)
	ep := fastEndpoint(t, "legacy", rc.srv.URL)
	ep.MediaType = MediaTypeV1
	n := openNotifier(t, Config{Endpoints: []EndpointConfig{ep}})
	publish(t, n, pushEvent(1))
	if d := rc.next(t); d.contentType != MediaTypeV1 {
		t.Fatalf("Content-Type %q, want %q", d.contentType, MediaTypeV1)
	}
}

func TestPublishStampsIDTimestampAndSource(t *testing.T) {
	rc := newReceiver(t, nil)
	src := SourceRecord{Addr: "h:5000", InstanceID: "i"}
	n := openNotifier(t, Config{Source: src, Endpoints: []EndpointConfig{fastEndpoint(t, "a", rc.srv.URL)}})
	publish(t, n, Event{Action: ActionPull}, Event{Action: ActionPull})
	a, b := rc.next(t).env.Events[0], rc.next(t).env.Events[0]
	if a.ID == "" || a.ID == b.ID || len(a.ID) != 36 {
		t.Errorf("ids %q and %q: want two distinct UUIDs", a.ID, b.ID)
	}
	if a.Timestamp.IsZero() || a.Source != src {
		t.Errorf("event %+v: want a timestamp and source %+v", a, src)
	}
}

// TestFailingReceiverGetsEveryEventInOrder answers 500, then drops the
// connection, for the first attempts: every event still arrives, once
// accepted, in the order published.
func TestFailingReceiverGetsEveryEventInOrder(t *testing.T) {
	const failures, events = 7, 20
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) int {
		switch {
		case n > failures:
			return http.StatusAccepted
		case n%2 == 0:
			// A connection error rather than a status.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return 0
		}
		return http.StatusInternalServerError
	})
	n := openNotifier(t, Config{Endpoints: []EndpointConfig{fastEndpoint(t, "a", rc.srv.URL)}})
	for i := range events {
		publish(t, n, pushEvent(i))
	}
	got := rc.nextIDs(t, events)
	if !slices.Equal(got, ids(0, events)) {
		t.Fatalf("delivered %v, want %v", got, ids(0, events))
	}
	waitFor(t, func() bool { return n.Metrics()[0].Pending == 0 })
	m := n.Metrics()[0]
	if m.Delivered != events || m.Failed != failures || m.LastError == "" || m.Failing {
		t.Fatalf("metrics %+v: want %d delivered, %d failed, a last error, not failing", m, events, failures)
	}
}

func TestRedirectIsNotDelivery(t *testing.T) {
	// A 3xx that is not followed (no Location) is retried like any other
	// non-2xx answer.
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) int {
		if n == 1 {
			return http.StatusNotModified
		}
		return http.StatusOK
	})
	n := openNotifier(t, Config{Endpoints: []EndpointConfig{fastEndpoint(t, "a", rc.srv.URL)}})
	publish(t, n, pushEvent(1))
	rc.next(t)
	if m := n.Metrics()[0]; m.Failed != 1 {
		t.Fatalf("failed %d, want the 304 counted as one failure", m.Failed)
	}
}

// TestHangingEndpointBlocksNeitherPublishNorOthers holds one endpoint's
// first request open for the whole test: Publish still returns for every
// event, and the other endpoint gets them all.
func TestHangingEndpointBlocksNeitherPublishNorOthers(t *testing.T) {
	release := make(chan struct{})
	hanging := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int {
		<-release
		return http.StatusOK
	})
	defer close(release) // before the servers close, which waits for handlers
	healthy := newReceiver(t, nil)
	slow := fastEndpoint(t, "hanging", hanging.srv.URL)
	slow.Timeout = time.Hour
	n := openNotifier(t, Config{Endpoints: []EndpointConfig{slow, fastEndpoint(t, "healthy", healthy.srv.URL)}})

	publish(t, n, pushEvent(0))
	<-hanging.got // the hanging endpoint now holds event 0 in flight
	for i := 1; i < 50; i++ {
		publish(t, n, pushEvent(i))
	}
	if got := healthy.nextIDs(t, 50); !slices.Equal(got, ids(0, 50)) {
		t.Fatalf("healthy endpoint got %v", got)
	}
	if m := n.Metrics()[0]; m.Pending != 50 || m.Delivered != 0 {
		t.Fatalf("hanging endpoint metrics %+v: want 50 pending, none delivered", m)
	}
}

// TestIgnoredEventsAreNotSent publishes ignored events before one that is
// not: delivery is in order, so when that one arrives nothing ignored can
// still come.
func TestIgnoredEventsAreNotSent(t *testing.T) {
	rc := newReceiver(t, nil)
	ep := fastEndpoint(t, "a", rc.srv.URL)
	ep.IgnoredMediaTypes = []string{MediaTypeBlob}
	ep.IgnoredActions = []string{ActionPull}
	n := openNotifier(t, Config{Endpoints: []EndpointConfig{ep}})
	blob := Event{ID: "blob", Action: ActionPush, Target: Target{Descriptor: v1.Descriptor{MediaType: MediaTypeBlob}}}
	pull := Event{ID: "pull", Action: ActionPull, Target: Target{Descriptor: v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json"}}}
	kept := Event{ID: "kept", Action: ActionPush, Target: Target{Descriptor: v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json"}}}
	publish(t, n, blob, pull, kept)
	if got := rc.nextIDs(t, 1); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("got %v, want only the event not ignored", got)
	}
	waitFor(t, func() bool { return n.Metrics()[0].Pending == 0 })
	if m := n.Metrics()[0]; m.Delivered != 1 {
		t.Fatalf("metrics %+v: ignored events were spooled", m)
	}
}

// TestSpoolOutlivesNotifier publishes while the endpoint is down, closes,
// and reopens on the same spool with the endpoint up.
func TestSpoolOutlivesNotifier(t *testing.T) {
	down := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int { return http.StatusServiceUnavailable })
	spool := t.TempDir()
	cfg := Config{Spool: spool, Endpoints: []EndpointConfig{{Name: "a", URL: down.srv.URL, Backoff: time.Millisecond}}}
	n, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		publish(t, n, pushEvent(i))
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := n.Publish(context.Background(), pushEvent(99)); err == nil {
		t.Fatal("Publish after Close succeeded")
	}

	up := newReceiver(t, nil)
	cfg.Endpoints[0].URL = up.srv.URL
	n2 := openNotifier(t, cfg)
	if got := up.nextIDs(t, 10); !slices.Equal(got, ids(0, 10)) {
		t.Fatalf("after reopening got %v, want %v", got, ids(0, 10))
	}
	publish(t, n2, pushEvent(10)) // numbering goes on after the spooled ones
	if got := up.nextIDs(t, 1); got[0] != pushEvent(10).ID {
		t.Fatalf("got %v", got)
	}
}

func TestFullSpoolDropsOldest(t *testing.T) {
	// The endpoint never accepts; its spool holds about four events.
	down := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int { return http.StatusInternalServerError })
	ep := fastEndpoint(t, "a", down.srv.URL)
	ep.Backoff, ep.MaxBackoff = time.Hour, time.Hour
	size := len(mustJSON(t, pushEvent(0)))
	ep.SpoolMaxBytes = int64(4*size + size/2)
	cfg := Config{Endpoints: []EndpointConfig{ep}}
	n, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		publish(t, n, pushEvent(i))
	}
	m := n.Metrics()[0]
	if m.Pending != 4 || m.Dropped != 6 || m.PendingBytes > ep.SpoolMaxBytes {
		t.Fatalf("metrics %+v: want 4 pending, 6 dropped", m)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	up := newReceiver(t, nil)
	cfg.Endpoints[0].URL, cfg.Endpoints[0].Backoff = up.srv.URL, time.Millisecond
	openNotifier(t, cfg)
	if got := up.nextIDs(t, 4); !slices.Equal(got, ids(6, 10)) {
		t.Fatalf("got %v, want the newest four", got)
	}
}

func TestSpoolIsLocked(t *testing.T) {
	spool := t.TempDir()
	cfg := Config{Spool: spool, Endpoints: []EndpointConfig{{Name: "a", URL: "http://127.0.0.1:1/"}}}
	openNotifier(t, cfg)
	if n, err := New(cfg, nil); err == nil {
		n.Close(context.Background())
		t.Fatal("a second Notifier opened the same spool")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("error %v, want one saying the spool is in use", err)
	}
}

func TestDuplicateEndpointNamesAreRefused(t *testing.T) {
	cfg := Config{Spool: t.TempDir(), Endpoints: []EndpointConfig{{Name: "a", URL: "http://x/"}, {Name: "a", URL: "http://y/"}}}
	if n, err := New(cfg, nil); err == nil {
		n.Close(context.Background())
		t.Fatal("two endpoints with one name were accepted")
	}
}

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	tests := []struct {
		failures int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second}, {7, time.Minute}, {1000, time.Minute}}
	for _, tt := range tests {
		if got := backoff(time.Second, time.Minute, tt.failures); got != tt.want {
			t.Errorf("backoff after %d failures = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

func TestSpoolDirNameStaysInside(t *testing.T) {
	for _, name := range []string{"ok-name_1.x", "../etc", "a/b", ".", "..", "", strings.Repeat("x", 200)} {
		d := SpoolDirName(name)
		if strings.ContainsAny(d, `/\`) || d == "." || d == ".." || d == "" {
			t.Errorf("SpoolDirName(%q) = %q", name, d)
		}
	}
	if SpoolDirName("webhook-1") != "webhook-1" {
		t.Error("a safe name is not kept as it is")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}
