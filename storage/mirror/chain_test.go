package mirror_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/mirror"
	"github.com/opencontainers/go-digest"
)

// A Berth mirror of another mirror (a Berth one, or Distribution's proxy)
// answers HEAD and GET of what neither has cached yet.
func TestChainedMirrors(t *testing.T) {
	up, uc := startUpstream(t)
	img := uc.push(t, "chain/app", "v1", randomBytes(200<<10))
	for _, tc := range []struct {
		name   string
		middle func(t *testing.T) string // the middle mirror's base URL
	}{
		{"berth of berth", func(t *testing.T) string { return startMirror(t, "", basicUpstream(up)).base }},
		{"berth of distribution's proxy", func(t *testing.T) string {
			d := testenv.StartDistribution(t, "", "", fmt.Sprintf("proxy:\n  remoteurl: http://%s\n  username: %s\n  password: %s\n", up.Addr, upstreamUser, upstreamPass))
			return "http://" + d.Addr
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edge := startMirror(t, "", mirror.Upstream{RemoteURL: tc.middle(t)})
			for _, path := range []string{"/v2/chain/app/manifests/v1", "/v2/chain/app/blobs/" + img.layers[0].String()} {
				resp := edge.do(t, http.MethodHead, path, nil, http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}})
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") == "" || resp.Header.Get("Content-Length") == "0" {
					t.Fatalf("HEAD %s: %s, Content-Length %q", path, resp.Status, resp.Header.Get("Content-Length"))
				}
			}
			status, h, body := edge.get(t, "/v2/chain/app/manifests/v1")
			if status != http.StatusOK || !bytes.Equal(body, img.payload) || h.Get("Content-Length") != strconv.Itoa(len(img.payload)) {
				t.Fatalf("GET manifest: %d", status)
			}
			status, _, body = edge.get(t, "/v2/chain/app/blobs/"+img.layers[0].String())
			if status != http.StatusOK || digest.FromBytes(body) != img.layers[0] {
				t.Fatalf("GET blob: %d", status)
			}
		})
	}
}
