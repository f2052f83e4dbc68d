package e2e

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// An instance remembers how each of its requests left an upload session
// and goes on from there without reading the session back, when the next
// request is its own. These tests have another instance write or delete
// the session in between, on the file system and on MinIO: the instance
// must not trust what it remembers then.
func TestUploadMemoryIsNotTrustedAfterAnotherInstance(t *testing.T) {
	for _, dep := range integrityDeployments() {
		if !strings.HasSuffix(dep.name, "-two-instances") {
			continue
		}
		t.Run(dep.name, func(t *testing.T) {
			inst := dep.instances(t)
			a, b := inst[0], inst[1]
			// Chunks crossing the 5 MiB part, ending on it and short of it.
			content := randomBytes(t, 3*(5<<20)+4321)
			cuts := []int{6 << 20, 10 << 20, 10<<20 + 100, 12 << 20, len(content)}
			for _, tc := range []struct {
				name   string
				ranged bool // PATCHes carry Content-Range
				order  string
			}{
				{"ranged", true, "aabaa"},
				{"streamed", false, "abaab"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					d := digest.FromBytes(content)
					repo := "memory/" + tc.name
					path := startSession(t, a, repo)
					prev := 0
					for i, cut := range cuts {
						base := a
						if tc.order[i] == 'b' {
							base = b
						}
						hdr := map[string]string{"Content-Type": "application/octet-stream"}
						if tc.ranged {
							hdr["Content-Range"] = strconv.Itoa(prev) + "-" + strconv.Itoa(cut-1)
						}
						res := do(t, http.MethodPatch, base+path, content[prev:cut], hdr)
						expectStatus(t, res, http.StatusAccepted)
						if want := "0-" + strconv.Itoa(cut-1); res.Header.Get("Range") != want {
							t.Fatalf("PATCH %d on %s: Range %q, want %q", i, base, res.Header.Get("Range"), want)
						}
						path, prev = uploadPath(t, res), cut
					}
					put := do(t, http.MethodPut, a+path+"&digest="+d.String(), nil, nil)
					expectStatus(t, put, http.StatusCreated)
					for _, base := range inst {
						got := do(t, http.MethodGet, base+"/v2/"+repo+"/blobs/"+d.String(), nil, nil)
						expectStatus(t, got, http.StatusOK)
						if !bytes.Equal(got.body, content) {
							t.Fatalf("%s serves %d bytes of digest %s under %s", base, len(got.body), digest.FromBytes(got.body), d)
						}
					}
				})
			}
			t.Run("DeletedOnTheOther", func(t *testing.T) {
				repo := "memory/deleted"
				path := startSession(t, a, repo)
				res := do(t, http.MethodPatch, a+path, content[:6<<20], nil)
				expectStatus(t, res, http.StatusAccepted)
				path = uploadPath(t, res)
				expectStatus(t, do(t, http.MethodDelete, b+path, nil, nil), http.StatusNoContent)
				for _, req := range []struct{ method, base string }{
					{http.MethodPatch, a}, {http.MethodPut, a}, {http.MethodGet, a}, {http.MethodGet, b},
				} {
					url := req.base + path
					if req.method == http.MethodPut {
						url += "&digest=" + digest.FromBytes(content[:6<<20]).String()
					}
					var body []byte
					if req.method == http.MethodPatch {
						body = content[6<<20 : 7<<20]
					}
					got := do(t, req.method, url, body, nil)
					if got.StatusCode != http.StatusNotFound || !bytes.Contains(got.body, []byte("BLOB_UPLOAD_UNKNOWN")) {
						t.Errorf("%s on %s after a DELETE on the other instance: %d %s, want 404 BLOB_UPLOAD_UNKNOWN", req.method, req.base, got.StatusCode, got.body)
					}
				}
			})
		})
	}
}
