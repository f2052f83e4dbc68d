package mirror_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestColdThenWarmPullFetchesOnce(t *testing.T) {
	up, uc := startUpstream(t)
	layer := randomBytes(3 << 20)
	img := uc.push(t, "library/app", "v1", layer)
	mr := startMirror(t, "", basicUpstream(up))

	for round := range 2 {
		status, h, body := mr.get(t, "/v2/library/app/manifests/v1")
		if status != http.StatusOK || !bytes.Equal(body, img.payload) {
			t.Fatalf("round %d: manifest: %d %s", round, status, body)
		}
		if got := h.Get("Docker-Content-Digest"); got != img.manifest.String() {
			t.Fatalf("round %d: digest %s, want %s", round, got, img.manifest)
		}
		for _, d := range append([]digest.Digest{img.config}, img.layers...) {
			status, _, body := mr.get(t, "/v2/library/app/blobs/"+d.String())
			if status != http.StatusOK || digest.FromBytes(body) != d {
				t.Fatalf("round %d: blob %s: %d, %d bytes", round, d, status, len(body))
			}
		}
	}
	if n := up.Requests(http.MethodGet, "/v2/library/app/blobs/"+img.layers[0].String()); n != 1 {
		t.Fatalf("upstream served the layer %d times, want 1 (the warm pull must come from storage)", n)
	}
	if n := up.Requests(http.MethodGet, "/v2/library/app/manifests/v1"); n != 1 {
		t.Fatalf("upstream served the manifest %d times, want 1", n)
	}
	st := mr.m.Stats()["http://"+up.Addr]
	if st.Misses == 0 || st.Hits == 0 || st.BytesFetched < int64(len(layer)) {
		t.Fatalf("stats %+v", st)
	}
	// The catalog holds what was fetched.
	if _, _, body := mr.get(t, "/v2/_catalog"); !bytes.Contains(body, []byte(`"library/app"`)) {
		t.Fatalf("catalog: %s", body)
	}
}

// A Range request for a blob the mirror is still fetching gets the
// requested bytes (the reader waits for them), as from a stored blob.
func TestRangeOfAColdBlob(t *testing.T) {
	up, uc := startUpstream(t)
	layer := randomBytes(4 << 20)
	img := uc.push(t, "range/app", "v1", layer)
	mr := startMirror(t, "", basicUpstream(up))
	for _, tc := range []struct {
		name, header string
		from, to     int
	}{
		{"cold, middle", "bytes=1000000-1000099", 1000000, 1000100},
		{"warm, tail", "bytes=4194000-", 4194000, len(layer)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := mr.do(t, http.MethodGet, "/v2/range/app/blobs/"+img.layers[0].String(), nil, http.Header{"Range": {tc.header}})
			defer resp.Body.Close()
			body := make([]byte, tc.to-tc.from+1)
			n, _ := io.ReadFull(resp.Body, body)
			if resp.StatusCode != http.StatusPartialContent || n != tc.to-tc.from || !bytes.Equal(body[:n], layer[tc.from:tc.to]) {
				t.Fatalf("%s: %s, %d bytes", tc.header, resp.Status, n)
			}
		})
		mr.m.Wait()
	}
}
