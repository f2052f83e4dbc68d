package mirror_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/mirror"
	"github.com/opencontainers/go-digest"
)

// An upstream that sends other bytes than the digest names: no client
// gets a complete blob, and nothing is stored. The upstream holds back
// its last byte until the client has read all the others, so the client
// is waiting for that byte when it arrives; rounds with new blobs make a
// race that lets it through show.
func TestCorruptUpstreamBlobIsNeverServedWhole(t *testing.T) {
	const rounds = 8
	type blob struct {
		d       digest.Digest
		bad     []byte
		release chan struct{}
	}
	blobs := map[string]*blob{}
	var order []*blob
	for range rounds {
		good := randomBytes(64 << 10)
		b := &blob{d: digest.FromBytes(good), bad: append([]byte(nil), good...), release: make(chan struct{})}
		b.bad[len(b.bad)-1] ^= 0xff
		blobs["/v2/evil/app/blobs/"+b.d.String()] = b
		order = append(order, b)
	}
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := blobs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b.bad)))
		_, _ = w.Write(b.bad[:len(b.bad)-1])
		w.(http.Flusher).Flush()
		<-b.release
		_, _ = w.Write(b.bad[len(b.bad)-1:])
	}))
	defer hostile.Close()
	mr := startMirror(t, "", mirror.Upstream{RemoteURL: hostile.URL})
	for i, b := range order {
		resp, err := http.Get(mr.base + "/v2/evil/app/blobs/" + b.d.String())
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, len(b.bad)-1)
		if _, err := io.ReadFull(resp.Body, head); err != nil {
			t.Fatalf("round %d: reading all but the last byte: %v", i, err)
		}
		close(b.release)
		rest, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && len(rest) == 1 {
			t.Fatalf("round %d: the client got a whole blob whose bytes do not match %s", i, b.d)
		}
		if _, err := mr.reg.Repository("evil/app").StatBlob(context.Background(), b.d); err == nil {
			t.Fatalf("round %d: the corrupt blob was stored", i)
		}
	}
}

// Bearer auth: the token is asked for at the realm the upstream names,
// with the credentials, and sent to the upstream only, never to the host
// a blob is redirected to.
func TestBearerTokenStaysWithTheUpstream(t *testing.T) {
	content := randomBytes(4096)
	d := digest.FromBytes(content)
	var mu sync.Mutex
	seen := map[string][]string{} // server → Authorization headers
	record := func(server string, r *http.Request) {
		mu.Lock()
		seen[server] = append(seen[server], r.Header.Get("Authorization"))
		mu.Unlock()
	}
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("elsewhere", r)
		_, _ = w.Write(content)
	}))
	defer elsewhere.Close()
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("tokens", r)
		if u, p, ok := r.BasicAuth(); !ok || u != "puller" || p != "pw" || r.URL.Query().Get("scope") != "repository:org/app:pull" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"token":"tok-123","expires_in":300}`)
	}))
	defer tokens.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("upstream", r)
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+tokens.URL+`/token",service="up",scope="repository:org/app:pull"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, elsewhere.URL+"/data", http.StatusTemporaryRedirect)
	}))
	defer upstream.Close()
	mr := startMirror(t, "", mirror.Upstream{RemoteURL: upstream.URL, Credentials: mirror.Static{Username: "puller", Password: "pw"}})
	status, _, body := mr.get(t, "/v2/org/app/blobs/"+d.String())
	if status != http.StatusOK || digest.FromBytes(body) != d {
		t.Fatalf("pull: %d", status)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range seen["elsewhere"] {
		if a != "" {
			t.Errorf("the redirect target got Authorization %q", a)
		}
	}
	if len(seen["tokens"]) != 1 || !strings.HasPrefix(seen["tokens"][0], "Basic ") {
		t.Errorf("token service saw %q, want one request with basic credentials", seen["tokens"])
	}
	if got := seen["upstream"]; len(got) != 2 || got[1] != "Bearer tok-123" {
		t.Errorf("upstream saw %q, want an anonymous try and then the token", got)
	}
}

// An upstream answering 5xx: a cached tag is served stale with a warning,
// what was never cached is a 502 naming the upstream.
func TestUpstream5xxServesStaleOr502(t *testing.T) {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	d := digest.FromBytes(manifest)
	var mu sync.Mutex
	broken := false
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b := broken
		mu.Unlock()
		if b {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/v2/five/app/manifests/v1" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", d.String())
		_, _ = w.Write(manifest)
	}))
	defer upstream.Close()
	mr := startMirror(t, "", mirror.Upstream{RemoteURL: upstream.URL, Freshness: -1})
	if status, _, _ := mr.get(t, "/v2/five/app/manifests/v1"); status != http.StatusOK {
		t.Fatalf("fill: %d", status)
	}
	mu.Lock()
	broken = true
	mu.Unlock()
	status, h, body := mr.get(t, "/v2/five/app/manifests/v1")
	if status != http.StatusOK || digest.FromBytes(body) != d || !strings.Contains(h.Get("Warning"), upstream.URL) {
		t.Fatalf("cached tag with a 503 upstream: %d, Warning %q", status, h.Get("Warning"))
	}
	status, _, body = mr.get(t, "/v2/five/app/manifests/v2")
	if code, msg := errorCode(body); status != http.StatusBadGateway || code != "UNAVAILABLE" || !strings.Contains(msg, upstream.URL) || !strings.Contains(msg, "503") {
		t.Fatalf("uncached tag with a 503 upstream: %d %s", status, body)
	}
}
