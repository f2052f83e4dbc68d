package registry

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/notifications"
	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
)

// hook is a webhook receiver on loopback behind a real Notifier: what the
// registry publishes goes through the spool and an HTTP POST before a test
// sees it.
type hook struct {
	events  chan notifications.Event
	types   chan string
	entered chan struct{} // one value per request received
}

func newHook(t *testing.T, hold <-chan struct{}) (*hook, *notifications.Notifier) {
	t.Helper()
	h := &hook{events: make(chan notifications.Event, 100), types: make(chan string, 100), entered: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.entered <- struct{}{}
		if hold != nil {
			<-hold
		}
		b, _ := io.ReadAll(r.Body)
		var env notifications.Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			t.Errorf("hook: %v: %s", err, b)
		}
		for _, ev := range env.Events {
			h.events <- ev
			h.types <- r.Header.Get("Content-Type")
		}
	}))
	t.Cleanup(srv.Close)
	n, err := notifications.New(notifications.Config{
		Source:    notifications.SourceRecord{Addr: "test:5000", InstanceID: "instance"},
		Endpoints: []notifications.EndpointConfig{{Name: "hook", URL: srv.URL, Spool: t.TempDir(), Backoff: time.Millisecond, Timeout: time.Minute}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return h, n
}

// next waits for the next event; the deadline only turns a hang into a
// failure.
func (h *hook) next(t *testing.T) notifications.Event {
	t.Helper()
	select {
	case ev := <-h.events:
		if ct := <-h.types; ct != notifications.MediaTypeV2 {
			t.Errorf("Content-Type %q, want %q", ct, notifications.MediaTypeV2)
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event")
		return notifications.Event{}
	}
}

func asAlice(w http.ResponseWriter, r *http.Request, _ []Access) (*http.Request, error) {
	return r.WithContext(WithUser(r.Context(), "alice")), nil
}

// TestEventsForEachAction drives every request that makes an event, and a
// HEAD of each kind that must not, and checks the events in order.
func TestEventsForEachAction(t *testing.T) {
	h, n := newHook(t, nil)
	s := newServer(t, &setup{
		opts:    Options{Events: n, Authorize: asAlice},
		storage: storage.Options{DeleteEnabled: true},
	})
	u := s.srv.URL
	host := u[len("http://"):]
	layer := []byte("layer bytes")
	ld := digest.FromBytes(layer)

	type want struct {
		action, method, mediaType, tag, from, repo string
		digest                                     digest.Digest
		size                                       int64
		url                                        string
	}
	check := func(t *testing.T, res result, w want) {
		t.Helper()
		ev := h.next(t)
		tg := ev.Target
		if ev.Action != w.action || tg.Repository != w.repo || tg.Digest != w.digest || tg.Tag != w.tag ||
			tg.MediaType != w.mediaType || tg.Size != w.size || tg.Length != w.size || tg.FromRepository != w.from || tg.URL != w.url {
			t.Errorf("event %+v\nwant %+v", ev, w)
		}
		rq := ev.Request
		if rq.ID == "" || rq.ID != res.header.Get("X-Request-Id") || rq.Method != w.method || rq.Host != host || rq.Addr == "" || rq.UserAgent != "Go-http-client/1.1" {
			t.Errorf("request record %+v, want %s of request %s", rq, w.method, res.header.Get("X-Request-Id"))
		}
		if ev.Actor.Name != "alice" || ev.Source.InstanceID != "instance" || ev.ID == "" || ev.Timestamp.IsZero() {
			t.Errorf("event %+v: want actor alice, the source, an id and a timestamp", ev)
		}
	}

	res := s.do("POST", "/v2/a/blobs/uploads/?digest="+ld.String(), layer)
	res.expect(t, http.StatusCreated, "")
	check(t, res, want{action: "push", method: "POST", mediaType: "application/octet-stream", repo: "a", digest: ld, size: int64(len(layer)), url: u + "/v2/a/blobs/" + ld.String()})

	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := digest.FromBytes(config)
	res = s.do("POST", "/v2/a/blobs/uploads/", nil)
	res.expect(t, http.StatusAccepted, "")
	res = s.do("PUT", res.header.Get("Location")+"?digest="+cd.String(), config)
	res.expect(t, http.StatusCreated, "")
	check(t, res, want{action: "push", method: "PUT", mediaType: "application/octet-stream", repo: "a", digest: cd, size: int64(len(config)), url: u + "/v2/a/blobs/" + cd.String()})

	res = s.do("POST", "/v2/b/blobs/uploads/?mount="+ld.String()+"&from=a", nil)
	res.expect(t, http.StatusCreated, "")
	check(t, res, want{action: "mount", method: "POST", mediaType: "application/octet-stream", repo: "b", from: "a", digest: ld, size: int64(len(layer)), url: u + "/v2/b/blobs/" + ld.String()})

	manifest := []byte(`{"schemaVersion":2,"mediaType":"` + mtManifest + `","config":{"mediaType":"` + mtConfig + `","digest":"` + cd.String() + `","size":` + strconv.Itoa(len(config)) +
		`},"layers":[{"mediaType":"` + mtLayer + `","digest":"` + ld.String() + `","size":` + strconv.Itoa(len(layer)) + `}]}`)
	md := digest.FromBytes(manifest)
	murl := u + "/v2/a/manifests/" + md.String()
	res = s.do("PUT", "/v2/a/manifests/v1?tag=v1.0", manifest, "Content-Type", mtManifest)
	res.expect(t, http.StatusCreated, "")
	for _, tag := range []string{"v1", "v1.0"} {
		check(t, res, want{action: "push", method: "PUT", mediaType: mtManifest, tag: tag, repo: "a", digest: md, size: int64(len(manifest)), url: murl})
	}

	// HEADs make no event: the GET after each is the next one seen.
	s.do("HEAD", "/v2/a/manifests/v1", nil).expect(t, http.StatusOK, "")
	res = s.do("GET", "/v2/a/manifests/v1", nil)
	res.expect(t, http.StatusOK, "")
	check(t, res, want{action: "pull", method: "GET", mediaType: mtManifest, tag: "v1", repo: "a", digest: md, size: int64(len(manifest)), url: murl})
	res = s.do("GET", "/v2/a/manifests/"+md.String(), nil)
	res.expect(t, http.StatusOK, "")
	check(t, res, want{action: "pull", method: "GET", mediaType: mtManifest, repo: "a", digest: md, size: int64(len(manifest)), url: murl})
	s.do("HEAD", "/v2/a/blobs/"+ld.String(), nil).expect(t, http.StatusOK, "")
	res = s.do("GET", "/v2/a/blobs/"+ld.String(), nil)
	res.expect(t, http.StatusOK, "")
	check(t, res, want{action: "pull", method: "GET", mediaType: "application/octet-stream", repo: "a", digest: ld, size: int64(len(layer)), url: u + "/v2/a/blobs/" + ld.String()})
	// A conditional GET answered 304 sends nothing, so it is no pull.
	s.do("GET", "/v2/a/manifests/v1", nil, "If-None-Match", `"`+md.String()+`"`).expect(t, http.StatusNotModified, "")

	res = s.do("DELETE", "/v2/a/manifests/v1.0", nil)
	res.expect(t, http.StatusAccepted, "")
	check(t, res, want{action: "delete", method: "DELETE", tag: "v1.0", repo: "a"})
	res = s.do("DELETE", "/v2/a/manifests/"+md.String(), nil)
	res.expect(t, http.StatusAccepted, "")
	check(t, res, want{action: "delete", method: "DELETE", repo: "a", digest: md})
	// The tag still on it went with it.
	check(t, res, want{action: "delete", method: "DELETE", tag: "v1", repo: "a"})
	res = s.do("DELETE", "/v2/b/blobs/"+ld.String(), nil)
	res.expect(t, http.StatusAccepted, "")
	check(t, res, want{action: "delete", method: "DELETE", repo: "b", digest: ld})

	// Failed requests make no event: the next one seen is this push.
	s.do("GET", "/v2/a/blobs/"+digest.FromString("nothing").String(), nil).expect(t, http.StatusNotFound, CodeBlobUnknown)
	s.do("DELETE", "/v2/a/manifests/v1.0", nil).expect(t, http.StatusNotFound, CodeManifestUnknown)
	res = s.do("POST", "/v2/c/blobs/uploads/?digest="+ld.String(), layer)
	res.expect(t, http.StatusCreated, "")
	check(t, res, want{action: "push", method: "POST", mediaType: "application/octet-stream", repo: "c", digest: ld, size: int64(len(layer)), url: u + "/v2/c/blobs/" + ld.String()})
}

func TestIncludeReferencesListsConfigAndLayers(t *testing.T) {
	h, n := newHook(t, nil)
	s := newServer(t, &setup{opts: Options{Events: n, EventReferences: true}, storage: storage.Options{DeleteEnabled: true}})
	payload := s.imageManifest("r", image{layers: 2})
	for range 3 { // the config and layer pushes
		h.next(t)
	}
	s.do("PUT", "/v2/r/manifests/latest", payload, "Content-Type", mtManifest).expect(t, http.StatusCreated, "")
	ev := h.next(t)
	var m struct {
		Config struct{ Digest digest.Digest }
		Layers []struct{ Digest digest.Digest }
	}
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	refs := ev.Target.References
	if len(refs) != 3 || refs[0].Digest != m.Config.Digest || refs[1].Digest != m.Layers[0].Digest || refs[2].Digest != m.Layers[1].Digest {
		t.Fatalf("references %+v, want the config and both layers", refs)
	}
}

// TestHangingReceiverDoesNotDelayPush holds the receiver's first request
// open while a whole image is pushed: every push is answered.
func TestHangingReceiverDoesNotDelayPush(t *testing.T) {
	hold := make(chan struct{})
	h, n := newHook(t, hold)
	defer close(hold)
	s := newServer(t, &setup{opts: Options{Events: n}})
	s.pushBlob("x", []byte("first"))
	<-h.entered // the receiver now holds the first event
	s.pushImage("x", "latest", image{layers: 5})
	if m := n.Metrics()[0]; m.Delivered != 0 || m.Pending != 8 {
		t.Fatalf("metrics %+v: want all 8 events pending behind the held one", m)
	}
}

// TestEventRequestFieldsAreBounded pulls with headers a hostile client
// chooses, each far longer than any real one: what reaches the event is
// cut to a bound, so a pull cannot make an event of hundreds of KiB.
func TestEventRequestFieldsAreBounded(t *testing.T) {
	h, n := newHook(t, nil)
	s := newServer(t, &setup{opts: Options{Events: n, Authorize: asAlice}})
	blob := []byte("bounded")
	d := s.pushBlob("a", blob)
	h.next(t) // the push

	huge := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	req, err := http.NewRequest(http.MethodGet, s.srv.URL+"/v2/a/blobs/"+d.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "docker/27 "+huge('u', 400<<10))
	req.Header.Set("X-Forwarded-For", huge('1', 200<<10)+", 10.0.0.1")
	req.Host = huge('h', 100<<10)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %s", resp.Status)
	}
	ev := h.next(t)
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"request.useragent", ev.Request.UserAgent, maxEventUserAgent},
		{"request.addr", ev.Request.Addr, maxEventAddr},
		{"request.host", ev.Request.Host, maxEventHost},
		{"target.url", ev.Target.URL, maxEventURL},
	} {
		if len(f.value) > f.max || len(f.value) == 0 {
			t.Errorf("%s is %d bytes, want 1 to %d", f.name, len(f.value), f.max)
		}
	}
	if !strings.HasPrefix(ev.Request.UserAgent, "docker/27 uuu") {
		t.Errorf("user agent %.40q…: want its beginning kept", ev.Request.UserAgent)
	}
	if b, _ := json.Marshal(ev); len(b) > 8<<10 {
		t.Errorf("the pull's event is %d bytes", len(b))
	}
}

func TestBoundedCutsAtACharacter(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc"},
		{"ab€", 4, "ab"}, // € is three bytes: not cut in two
		{"ab€", 5, "ab€"},
	}
	for _, tt := range tests {
		if got := bounded(tt.in, tt.n); got != tt.want {
			t.Errorf("bounded(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
