package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/notifications"
	"github.com/opencontainers/go-digest"
)

// TestServePullFloodKeepsPushAndDeleteEvents plays a hostile client with
// pull rights against berth serve while its only endpoint is down (it
// holds the first event and accepts nothing more): the client pulls in a
// loop, with the longest User-Agent the server takes, before and after a
// manifest push and a manifest delete, enough to fill the spool many
// times over. When the endpoint comes back, the push and the delete
// arrive.
func TestServePullFloodKeepsPushAndDeleteEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs berth")
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	events := make(chan notifications.Event, 10000)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
			<-release // the endpoint is down until the flood is over
		default:
		}
		for _, ev := range decodeEvents(t, r.Body) {
			events <- ev
		}
	}))
	defer hook.Close()
	var once bool
	up := func() {
		if !once {
			once = true
			close(release)
		}
	}
	defer up()

	const spoolMax = 32 << 10 // a few dozen pulls
	debug := testenv.FreeAddr(t)
	addr := testenv.StartBerth(t, "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+t.TempDir()+
		"\n  delete:\n    enabled: true\nhttp:\n  debug:\n    addr: "+debug+"\n    prometheus:\n      enabled: true"+
		"\nnotifications:\n  spool: "+t.TempDir()+"\n  spoolmaxbytes: "+itoa(spoolMax)+
		"\n  endpoints:\n    - name: hook\n      url: "+hook.URL+"\n      backoff: 10ms\n      timeout: 1h\n")
	base := "http://" + addr + "/v2/flood/"
	do := func(method, url, ctype string, body []byte, want int) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		// As long a User-Agent as fits under the header limit.
		req.Header.Set("User-Agent", strings.Repeat("h", maxHeaderBytes-1024))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s, want %d", method, url, resp.Status, want)
		}
		return resp
	}
	layer := []byte("the layer")
	ld := digest.FromBytes(layer)
	do("POST", base+"blobs/uploads/?digest="+ld.String(), "", layer, http.StatusCreated)
	<-entered // the endpoint now holds the layer's push event
	flood := func() {
		for range 300 {
			do("GET", base+"blobs/"+ld.String(), "", nil, http.StatusOK)
		}
	}
	flood()
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		ld.String() + `","size":` + itoa(len(layer)) + `},"layers":[]}`)
	md := digest.FromBytes(manifest)
	do("PUT", base+"manifests/v1", "application/vnd.oci.image.manifest.v1+json", manifest, http.StatusCreated)
	flood()
	do("DELETE", base+"manifests/"+md.String(), "", nil, http.StatusAccepted)
	flood()
	// Only pulls were dropped, and the metrics say so.
	resp, err := http.Get("http://" + debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`registry_notifications_dropped_total{action="push",endpoint="hook"} 0`,
		`registry_notifications_dropped_total{action="delete",endpoint="hook"} 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(string(metrics), `registry_notifications_dropped_total{action="pull",endpoint="hook"} `) ||
		strings.Contains(string(metrics), `registry_notifications_dropped_total{action="pull",endpoint="hook"} 0`+"\n") {
		t.Errorf("metrics show no pull dropped:\n%s", grepLines(string(metrics), "dropped_total"))
	}
	up()

	var pushed, deleted bool
	deadline := time.After(60 * time.Second) // only turns a hang into a failure
	for !pushed || !deleted {
		select {
		case ev := <-events:
			switch {
			case ev.Action == notifications.ActionPush && ev.Target.Digest == md:
				pushed = true
			case ev.Action == notifications.ActionDelete && ev.Target.Digest == md:
				deleted = true
			case ev.Action == notifications.ActionPull && len(ev.Request.UserAgent) > 512:
				t.Errorf("a pull event carries a User-Agent of %d bytes", len(ev.Request.UserAgent))
			}
		case <-deadline:
			t.Fatalf("after the flood: manifest push notified %v, delete notified %v", pushed, deleted)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			b.WriteString(line)
		}
	}
	return b.String()
}
