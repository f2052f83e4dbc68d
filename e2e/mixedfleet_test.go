package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// fleetSecret is the http.secret every instance of the fleet shares.
const fleetSecret = "one-secret-for-the-whole-fleet"

// startDistribution runs CNCF Distribution on the filesystem tree root
// with the fleet's secret and returns its base URL.
func startDistribution(t *testing.T, root string) string {
	t.Helper()
	bin := testenv.Tool(t, "registry")
	addr := testenv.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "distribution.yml")
	writeConfig(t, cfg, fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
`, root, addr, fleetSecret))
	p := testenv.StartProcess(t, bin, []string{"serve", cfg}, nil)
	p.WaitHTTP(t, "http://"+addr+"/v2/", 30*time.Second)
	return "http://" + addr
}

// berthToDistribution says what Berth lacks for Distribution to continue
// an upload Berth started: upload URLs signed in Distribution's form with
// the session's size (registry/uploads.go calling uploadLocationAt), and
// the unfinished data where Distribution looks for it (the filesystem
// driver keeps it at data.partial~, Distribution appends to data).
const berthToDistribution = "Berth → Distribution needs upload URLs signed with the session's size and the unfinished data at Distribution's path; see the report of issue 19"

// distributionState tells whether an upload URL's _state is in
// Distribution's form (HMAC, then the JSON of the upload's state).
func distributionState(path string) bool {
	u, err := url.Parse(path)
	if err != nil {
		return false
	}
	raw, err := base64.URLEncoding.DecodeString(u.Query().Get("_state"))
	return err == nil && len(raw) > 32 && strings.Contains(string(raw[32:]), `"UUID"`)
}

// TestMixedFleetContinuesEachOthersUploads puts one Berth and one CNCF
// Distribution on one storage tree with one http.secret, as during a
// rolling switch behind one load balancer: one chunked upload moves
// between them, and the image it belongs to is pulled and validated
// through both.
func TestMixedFleetContinuesEachOthersUploads(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	root := t.TempDir()
	berth := "http://" + testenv.StartBerth(t, filesystemConfig(root)+"  secret: "+fleetSecret+"\n")
	dist := startDistribution(t, root)
	servers := map[string]string{"berth": berth, "distribution": dist}

	tests := []struct {
		name  string
		order []string // POST, each PATCH, then PUT
	}{
		{"distribution starts, berth finishes", []string{"distribution", "distribution", "berth", "berth", "berth"}},
		{"berth starts, distribution continues", []string{"berth", "berth", "distribution", "berth", "distribution"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := "fleet/" + strings.ReplaceAll(tt.name, " ", "-")
			repo = strings.ReplaceAll(repo, ",", "")
			layer, diffID := randomLayer(t, 3<<20+99)
			chunks := [][]byte{layer[:1<<20], layer[1<<20 : 2<<20], layer[2<<20:]}
			res := do(t, http.MethodPost, servers[tt.order[0]]+"/v2/"+repo+"/blobs/uploads/", nil, nil)
			expectStatus(t, res, http.StatusAccepted)
			path := uploadPath(t, res)
			offset := 0
			for i, chunk := range chunks {
				srv := tt.order[1+i]
				if srv == "distribution" && !distributionState(path) {
					t.Skip(berthToDistribution)
				}
				res := do(t, http.MethodPatch, servers[srv]+path, chunk, map[string]string{
					"Content-Type":  "application/octet-stream",
					"Content-Range": fmt.Sprintf("%d-%d", offset, offset+len(chunk)-1),
				})
				expectStatus(t, res, http.StatusAccepted)
				offset += len(chunk)
				if got, want := res.Header.Get("Range"), fmt.Sprintf("0-%d", offset-1); got != want {
					t.Fatalf("PATCH %d on %s: Range %q, want %q", i, srv, got, want)
				}
				path = uploadPath(t, res)
			}
			last := tt.order[len(tt.order)-1]
			if last == "distribution" && !distributionState(path) {
				t.Skip(berthToDistribution)
			}
			d := digest.FromBytes(layer)
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			res = do(t, http.MethodPut, servers[last]+path+sep+"digest="+d.String(), nil, nil)
			expectStatus(t, res, http.StatusCreated)

			config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + diffID.String() + `"]}}`)
			cd := pushBlob(t, berth, "/v2/"+repo, config)
			manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
				`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
				`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}`,
				cd, len(config), d, len(layer))
			res = do(t, http.MethodPut, dist+"/v2/"+repo+"/manifests/v1", []byte(manifest),
				map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
			expectStatus(t, res, http.StatusCreated)
			for name, base := range servers {
				ref := strings.TrimPrefix(base, "http://") + "/" + repo + ":v1"
				if err := testenv.RunQuiet(crane, "validate", "--insecure", "--remote", ref); err != nil {
					t.Errorf("crane validate through %s: %v", name, err)
				}
			}
		})
	}
}

// randomLayer is a gzipped tar of one file of n random bytes, and the
// digest of the tar (its diff ID).
func randomLayer(t *testing.T, n int) ([]byte, digest.Digest) {
	t.Helper()
	content := make([]byte, n)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "random", Mode: 0o644, Size: int64(n)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes(), digest.FromBytes(b.Bytes())
}
