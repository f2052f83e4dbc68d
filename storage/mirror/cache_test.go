package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/mirror"
	"github.com/opencontainers/go-digest"
)

func TestTagMovedUpstreamIsRefetchedAfterTheFreshnessWindow(t *testing.T) {
	up, uc := startUpstream(t)
	for _, tc := range []struct {
		name      string
		freshness time.Duration
		wantNew   bool
	}{
		{"window passed (revalidate every time)", -1, true},
		{"inside the window", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "moved/" + strings.Fields(tc.name)[0]
			old := uc.push(t, repo, "latest", randomBytes(1000))
			u := basicUpstream(up)
			u.Freshness = tc.freshness
			mr := startMirror(t, "", u)
			if _, h, _ := mr.get(t, "/v2/"+repo+"/manifests/latest"); h.Get("Docker-Content-Digest") != old.manifest.String() {
				t.Fatalf("first pull: %s", h.Get("Docker-Content-Digest"))
			}
			moved := uc.push(t, repo, "latest", randomBytes(1000))
			status, h, body := mr.get(t, "/v2/"+repo+"/manifests/latest")
			want := old
			if tc.wantNew {
				want = moved
			}
			if status != http.StatusOK || h.Get("Docker-Content-Digest") != want.manifest.String() || !bytes.Equal(body, want.payload) {
				t.Fatalf("second pull: %d %s, want %s", status, h.Get("Docker-Content-Digest"), want.manifest)
			}
		})
	}
}

func TestUpstreamDownServesStaleAndNamesTheUpstreamForTheRest(t *testing.T) {
	up, uc := startUpstream(t)
	img := uc.push(t, "stale/app", "v1", randomBytes(2000))
	never := uc.push(t, "stale/app", "never", randomBytes(2000))
	u := basicUpstream(up)
	u.Freshness = -1 // every pull asks the upstream
	mr := startMirror(t, "", u)
	if status, _, _ := mr.get(t, "/v2/stale/app/manifests/v1"); status != http.StatusOK {
		t.Fatalf("fill: %d", status)
	}
	if status, _, _ := mr.get(t, "/v2/stale/app/blobs/"+img.layers[0].String()); status != http.StatusOK {
		t.Fatalf("fill blob: %d", status)
	}
	up.Proc.Stop()

	status, h, body := mr.get(t, "/v2/stale/app/manifests/v1")
	if status != http.StatusOK || !bytes.Equal(body, img.payload) {
		t.Fatalf("stale manifest: %d %s", status, body)
	}
	if w := h.Get("Warning"); !strings.HasPrefix(w, `299 - "`) || !strings.Contains(w, up.Addr) {
		t.Fatalf("Warning %q: want a 299 warning naming the upstream", w)
	}
	if status, _, _ := mr.get(t, "/v2/stale/app/blobs/"+img.layers[0].String()); status != http.StatusOK {
		t.Fatalf("cached blob with the upstream down: %d", status)
	}
	if _, _, body := mr.get(t, "/v2/stale/app/tags/list"); !bytes.Contains(body, []byte(`"v1"`)) {
		t.Fatalf("tags with the upstream down: %s", body)
	}
	for _, path := range []string{
		"/v2/stale/app/manifests/never",
		"/v2/stale/app/manifests/" + never.manifest.String(),
		"/v2/stale/app/blobs/" + never.layers[0].String(),
	} {
		status, _, body := mr.get(t, path)
		code, msg := errorCode(body)
		if status != http.StatusBadGateway || code != "UNAVAILABLE" || !strings.Contains(msg, up.Addr) {
			t.Errorf("%s: %d %s, want 502 UNAVAILABLE naming %s", path, status, body, up.Addr)
		}
	}
	if st := mr.m.Stats()["http://"+up.Addr]; st.StaleServes == 0 || st.Errors == 0 {
		t.Errorf("stats %+v: want stale serves and errors counted", st)
	}
}

// A frozen upstream (accepts, never answers) must give the client an
// error once the upstream timeout passes, not a hung request.
func TestFrozenUpstreamAnswers503NotAHang(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	mr := startMirror(t, "", mirror.Upstream{RemoteURL: "http://" + ln.Addr().String(), Timeout: 500 * time.Millisecond})
	d := digest.FromString("x")
	for _, path := range []string{"/v2/frozen/app/manifests/v1", "/v2/frozen/app/blobs/" + d.String()} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, mr.base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v (the mirror did not answer)", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if code, msg := errorCode(body); resp.StatusCode != http.StatusServiceUnavailable || code != "UNAVAILABLE" || !strings.Contains(msg, ln.Addr().String()) {
			t.Errorf("%s: %d %s, want 503 UNAVAILABLE naming the upstream", path, resp.StatusCode, body)
		}
	}
}

func TestConcurrentColdPullsOfOneBlobFetchItOnce(t *testing.T) {
	up, uc := startUpstream(t)
	layer := randomBytes(64 << 20)
	img := uc.push(t, "big/app", "v1", layer)
	mr := startMirror(t, "", basicUpstream(up))
	d := img.layers[0]
	const clients = 16
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			resp, err := http.Get(mr.base + "/v2/big/app/blobs/" + d.String())
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			h := digest.Canonical.Digester()
			n, err := io.Copy(h.Hash(), resp.Body)
			switch {
			case err != nil:
				errs <- err
			case resp.StatusCode != http.StatusOK || n != int64(len(layer)) || h.Digest() != d:
				errs <- errors.New(resp.Status + ": wrong content")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := up.Requests(http.MethodGet, "/v2/big/app/blobs/"+d.String()); n != 1 {
		t.Fatalf("upstream served the blob %d times to %d concurrent clients, want 1", n, clients)
	}
	if st := mr.m.Stats()["http://"+up.Addr]; st.BytesFetched != int64(len(layer)) {
		t.Fatalf("fetched %d bytes, want %d", st.BytesFetched, len(layer))
	}
}

// A client that hangs up mid-blob leaves the fetch running: the blob is
// stored whole and the next client gets it from storage.
func TestClientHangupDoesNotAbortTheFill(t *testing.T) {
	up, uc := startUpstream(t)
	layer := randomBytes(32 << 20)
	img := uc.push(t, "hangup/app", "v1", layer)
	mr := startMirror(t, "", basicUpstream(up))
	d := img.layers[0]
	resp, err := http.Get(mr.base + "/v2/hangup/app/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<10)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // hang up
	waitStored(t, mr, "hangup/app", d)
	status, _, body := mr.get(t, "/v2/hangup/app/blobs/"+d.String())
	if status != http.StatusOK || digest.FromBytes(body) != d {
		t.Fatalf("after the hangup: %d, %d bytes", status, len(body))
	}
	if n := up.Requests(http.MethodGet, "/v2/hangup/app/blobs/"+d.String()); n != 1 {
		t.Fatalf("upstream GETs %d, want 1", n)
	}
}

func TestPushesAndDeletesAreRefused(t *testing.T) {
	up, uc := startUpstream(t)
	img := uc.push(t, "ro/app", "v1", randomBytes(100))
	mr := startMirror(t, "", basicUpstream(up))
	mr.get(t, "/v2/ro/app/manifests/v1")
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/v2/ro/app/blobs/uploads/"},
		{http.MethodPost, "/v2/ro/app/blobs/uploads/?mount=" + img.layers[0].String() + "&from=other/app"},
		{http.MethodPut, "/v2/ro/app/manifests/v2"},
		{http.MethodDelete, "/v2/ro/app/manifests/" + img.manifest.String()},
		{http.MethodDelete, "/v2/ro/app/blobs/" + img.layers[0].String()},
	} {
		var body []byte
		if tc.method == http.MethodPut {
			body = img.payload
		}
		resp := mr.do(t, tc.method, tc.path, body, http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}})
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if code, _ := errorCode(b); resp.StatusCode != http.StatusMethodNotAllowed || code != "UNSUPPORTED" {
			t.Errorf("%s %s: %d %s, want 405 UNSUPPORTED", tc.method, tc.path, resp.StatusCode, b)
		}
	}
	if status, _, _ := mr.get(t, "/v2/ro/app/manifests/"+img.manifest.String()); status != http.StatusOK {
		t.Fatalf("the manifest is gone after a refused delete: %d", status)
	}
}

// Eviction state lives in storage: a mirror started again on the same
// storage evicts what the first one fetched, and a later pull fetches it
// again.
func TestTTLEvictionSurvivesARestartAndRefetches(t *testing.T) {
	up, uc := startUpstream(t)
	img := uc.push(t, "ttl/app", "v1", randomBytes(5000))
	u := basicUpstream(up)
	u.TTL = time.Hour
	first := startMirror(t, "", u)
	first.get(t, "/v2/ttl/app/manifests/v1")
	first.get(t, "/v2/ttl/app/blobs/"+img.layers[0].String())
	waitStored(t, first, "ttl/app", img.layers[0])
	first.m.Wait() // the manifest is stored after its client is answered
	first.srv.Close()
	// The manifest's expiry is recorded off the client's path: the
	// restart comes after it, as after a graceful stop.
	first.m.Wait()

	again := startMirror(t, first.root, u)
	ctx := context.Background()
	if n, err := again.m.Evict(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("evict before the TTL: %d, %v", n, err)
	}
	n, err := again.m.Evict(ctx, time.Now().Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("evict after the TTL: %d entries, %v; want the manifest and the blob", n, err)
	}
	repo := again.reg.Repository("ttl/app")
	if _, err := repo.StatBlob(ctx, img.layers[0]); !errors.Is(err, storage.ErrBlobUnknown) {
		t.Fatalf("blob after eviction: %v", err)
	}
	if _, err := repo.GetManifest(ctx, "v1"); !errors.Is(err, storage.ErrManifestUnknown) {
		t.Fatalf("tag after eviction: %v", err)
	}
	status, _, body := again.get(t, "/v2/ttl/app/blobs/"+img.layers[0].String())
	if status != http.StatusOK || digest.FromBytes(body) != img.layers[0] {
		t.Fatalf("pull after eviction: %d", status)
	}
	if n := up.Requests(http.MethodGet, "/v2/ttl/app/blobs/"+img.layers[0].String()); n != 2 {
		t.Fatalf("upstream GETs of the blob: %d, want 2 (before and after eviction)", n)
	}
}

// waitStored waits (a bounded time) until a fetched blob is in storage:
// clients are served while the blob is still being stored.
func waitStored(t *testing.T, mr *served, repo string, d digest.Digest) {
	t.Helper()
	r := mr.reg.Repository(repo)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := r.StatBlob(context.Background(), d); err == nil {
			// The fill is retired, its expiry recorded, once it is
			// no longer fetching.
			if !mr.m.Fetching(repo, d) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("blob %s never reached storage", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxy.cachewritetimeout bounds storing what was fetched: past it the
// client is still served, nothing is stored, and the next pull fetches
// again.
func TestCacheWriteTimeoutGivesUpStoringButServes(t *testing.T) {
	up, uc := startUpstream(t)
	img := uc.push(t, "slowcache/app", "v1", randomBytes(1<<20))
	u := basicUpstream(up)
	u.WriteTimeout = time.Nanosecond
	mr := startMirror(t, "", u)
	status, _, body := mr.get(t, "/v2/slowcache/app/manifests/v1")
	if status != http.StatusOK || !bytes.Equal(body, img.payload) {
		t.Fatalf("manifest: %d", status)
	}
	status, _, body = mr.get(t, "/v2/slowcache/app/blobs/"+img.layers[0].String())
	if status != http.StatusOK || digest.FromBytes(body) != img.layers[0] {
		t.Fatalf("blob: %d", status)
	}
	mr.m.Wait()
	repo := mr.reg.Repository("slowcache/app")
	if _, err := repo.StatBlob(context.Background(), img.layers[0]); err == nil {
		t.Fatal("the blob was stored although the write timeout had passed")
	}
	if _, err := repo.GetManifest(context.Background(), "v1"); err == nil {
		t.Fatal("the manifest was stored although the write timeout had passed")
	}
}

// proxy.exec: a Docker credential helper gives the upstream's password.
func TestCredentialHelperLogsIn(t *testing.T) {
	up, uc := startUpstream(t)
	img := uc.push(t, "helper/app", "v1", randomBytes(100))
	dir := t.TempDir()
	helper := filepath.Join(dir, "docker-credential-test")
	script := "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread url\necho \"$url\" >> " + filepath.Join(dir, "asked") + "\n" +
		`printf '{"ServerURL":"%s","Username":"` + upstreamUser + `","Secret":"` + upstreamPass + `"}' "$url"` + "\n"
	if err := os.WriteFile(helper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	u := mirror.Upstream{RemoteURL: "http://" + up.Addr, Credentials: &mirror.Helper{Command: helper, ServerURL: "http://" + up.Addr}}
	mr := startMirror(t, "", u)
	if status, h, _ := mr.get(t, "/v2/helper/app/manifests/v1"); status != http.StatusOK || h.Get("Docker-Content-Digest") != img.manifest.String() {
		t.Fatalf("pull with the helper's credentials: %d", status)
	}
	asked, _ := os.ReadFile(filepath.Join(dir, "asked"))
	if strings.TrimSpace(string(asked)) != "http://"+up.Addr {
		t.Fatalf("the helper was asked for %q", asked)
	}
}
