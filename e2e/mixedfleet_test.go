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

// fleetMemberConfig is the config of one server of the fleet, Berth or
// Distribution: head, the storage section storageYAML (indented as under
// storage:) with delete on and redirects off, http on addr with the
// fleet's secret, then tail.
func fleetMemberConfig(head, storageYAML, addr, tail string) string {
	return fmt.Sprintf(`version: 0.1
%sstorage:
%s  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: %s
  secret: %s
%s`, head, storageYAML, addr, fleetSecret, tail)
}

// startDistribution runs CNCF Distribution with the storage section
// storageYAML (indented as under storage:) and the fleet's secret, and
// returns its base URL.
func startDistribution(t *testing.T, storageYAML string) string {
	t.Helper()
	bin := testenv.Tool(t, "registry")
	addr := testenv.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "distribution.yml")
	writeConfig(t, cfg, fleetMemberConfig("log:\n  level: warn\n", storageYAML, addr, ""))
	p := testenv.StartProcess(t, bin, []string{"serve", cfg}, nil)
	p.WaitHTTP(t, "http://"+addr+"/v2/", 30*time.Second)
	return "http://" + addr
}

// startBerthInFleet runs Berth with the storage section storageYAML, the
// fleet's secret and upload sessions left in the form Distribution
// continues, and returns its base URL.
func startBerthInFleet(t *testing.T, storageYAML string) string {
	t.Helper()
	return "http://" + testenv.StartBerth(t, fleetMemberConfig("", storageYAML, "127.0.0.1:5000",
		"berth:\n  storage:\n    distributionuploads: true\n"))
}

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
// Distribution on one store with one http.secret, as during a rolling
// switch behind one load balancer: one chunked upload moves between them,
// both ways, and the image it belongs to is pulled and validated through
// both. It runs on a filesystem tree and on one MinIO bucket, with chunks
// that cross S3's 5 MiB part boundary and chunks that do not.
func TestMixedFleetContinuesEachOthersUploads(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	backends := []struct {
		name    string
		storage func(t *testing.T) string
	}{
		{"filesystem", func(t *testing.T) string {
			return fmt.Sprintf("  filesystem:\n    rootdirectory: %s\n", t.TempDir())
		}},
		{"s3", func(t *testing.T) string {
			m := testenv.StartMinIO(t)
			return s3Storage(m, m.Bucket(t), "chunksize: 5242880", "rootdirectory: /fleet")
		}},
	}
	orders := []struct {
		name  string
		order []string // POST, each PATCH, then PUT
	}{
		{"distribution starts, berth finishes", []string{"distribution", "distribution", "berth", "berth", "berth"}},
		{"berth starts, distribution finishes", []string{"berth", "berth", "distribution", "berth", "distribution"}},
		{"alternating from berth", []string{"berth", "distribution", "berth", "distribution", "berth"}},
		{"alternating from distribution", []string{"distribution", "berth", "distribution", "berth", "distribution"}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := b.storage(t)
			berth := startBerthInFleet(t, st)
			dist := startDistribution(t, st)
			servers := map[string]string{"berth": berth, "distribution": dist}
			for _, tt := range orders {
				t.Run(tt.name, func(t *testing.T) {
					repo := "fleet/" + strings.NewReplacer(" ", "-", ",", "").Replace(tt.name)
					pushAlternating(t, servers, tt.order, repo, crane)
				})
			}
		})
	}
}

// pushAlternating uploads a layer in three chunks along order, pushes an
// image of it and validates it through every server.
func pushAlternating(t *testing.T, servers map[string]string, order []string, repo, crane string) {
	t.Helper()
	layer, diffID := randomLayer(t, 13<<20+99)
	// A chunk over a part, one under, and the rest: on S3 the session
	// holds full parts, a short tail, and parts Distribution left.
	chunks := [][]byte{layer[:6<<20], layer[6<<20 : 7<<20], layer[7<<20:]}
	res := do(t, http.MethodPost, servers[order[0]]+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	expectStatus(t, res, http.StatusAccepted)
	path := uploadPath(t, res)
	offset := 0
	for i, chunk := range chunks {
		srv := order[1+i]
		if !distributionState(path) {
			t.Fatalf("upload URL %q does not carry Distribution's signed state", path)
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
		// Either server tells where the upload stands, and hands out a
		// URL the other continues.
		for name, base := range servers {
			res := do(t, http.MethodGet, base+path, nil, nil)
			expectStatus(t, res, http.StatusNoContent)
			if got, want := res.Header.Get("Range"), fmt.Sprintf("0-%d", offset-1); got != want {
				t.Fatalf("GET on %s after PATCH %d on %s: Range %q, want %q", name, i, srv, got, want)
			}
		}
	}
	last := order[len(order)-1]
	d := digest.FromBytes(layer)
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	res = do(t, http.MethodPut, servers[last]+path+sep+"digest="+d.String(), nil, nil)
	expectStatus(t, res, http.StatusCreated)

	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + diffID.String() + `"]}}`)
	cd := pushBlob(t, servers["berth"], "/v2/"+repo, config)
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}`,
		cd, len(config), d, len(layer))
	res = do(t, http.MethodPut, servers["distribution"]+"/v2/"+repo+"/manifests/v1", []byte(manifest),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	expectStatus(t, res, http.StatusCreated)
	for name, base := range servers {
		ref := strings.TrimPrefix(base, "http://") + "/" + repo + ":v1"
		if err := testenv.RunQuiet(crane, "validate", "--insecure", "--remote", ref); err != nil {
			t.Errorf("crane validate through %s: %v", name, err)
		}
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
