package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
)

// TestListingsOnS3ShowWhatDistributionWrote runs CNCF Distribution and
// Berth on one MinIO bucket. What Distribution pushes (nested names, names
// that share prefixes with "-", "." and "/") is in Berth's catalog, in
// lexical order, page by page; a manifest Distribution deletes takes its
// tag out of Berth's tag list.
func TestListingsOnS3ShowWhatDistributionWrote(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t)
	berth := "http://" + testenv.StartBerth(t, s3Config(m, bucket))
	dist := startDistributionOnS3(t, m, bucket)
	distHost := strings.TrimPrefix(dist, "http://")

	repos := []string{"team/app", "team/app/sub", "team-x", "team.y/z", "a0", "a"}
	dir := t.TempDir()
	for i, repo := range repos {
		layer := writeLayer(t, dir, fmt.Sprintf("layer%d", i))
		testenv.Run(t, crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", distHost+"/"+repo+":v1")
		if i == 0 {
			testenv.Run(t, crane, "tag", "--insecure", distHost+"/"+repo+":v1", "v1.1")
			rc := writeLayer(t, dir, "rc")
			testenv.Run(t, crane, "append", "--insecure", "--oci-empty-base", "-f", rc, "-t", distHost+"/"+repo+":v1-rc")
		}
	}
	// Deleting the manifest v1-rc points at untags it (Distribution looks
	// its tags up and removes them).
	rc := strings.TrimSpace(testenv.Run(t, crane, "digest", "--insecure", distHost+"/team/app:v1-rc"))
	testenv.Run(t, crane, "delete", "--insecure", distHost+"/team/app@"+rc)

	want := slices.Sorted(slices.Values(repos))
	for _, n := range []int{1, 2, 100} {
		if got := pageAll(t, berth, fmt.Sprintf("/v2/_catalog?n=%d", n), "repositories"); !slices.Equal(got, want) {
			t.Errorf("Berth's catalog in pages of %d = %q, want %q", n, got, want)
		}
	}
	for _, n := range []int{1, 100} {
		if got, want := pageAll(t, berth, fmt.Sprintf("/v2/team/app/tags/list?n=%d", n), "tags"), []string{"v1", "v1.1"}; !slices.Equal(got, want) {
			t.Errorf("Berth's tags of team/app in pages of %d = %q, want %q", n, got, want)
		}
	}
}

// startDistributionOnS3 runs CNCF Distribution on bucket of m, deletes
// enabled, and returns its base URL.
func startDistributionOnS3(t *testing.T, m *testenv.MinIO, bucket string) string {
	t.Helper()
	bin := testenv.Tool(t, "registry")
	addr := testenv.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "distribution.yml")
	writeConfig(t, cfg, fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  s3:
    accesskey: %s
    secretkey: %s
    region: %s
    regionendpoint: %s
    forcepathstyle: true
    bucket: %s
    secure: false
    v4auth: true
  delete:
    enabled: true
http:
  addr: %s
`, m.AccessKey, m.SecretKey, m.Region, m.Endpoint, bucket, addr))
	p := testenv.StartProcess(t, bin, []string{"serve", cfg}, nil)
	p.WaitHTTP(t, "http://"+addr+"/v2/", 30*time.Second)
	return "http://" + addr
}

// pageAll follows a listing's Link headers from path and returns the
// entries of field from every page.
func pageAll(t *testing.T, base, path, field string) []string {
	t.Helper()
	var all []string
	for range 1000 {
		res := do(t, http.MethodGet, base+path, nil, nil)
		expectStatus(t, res, http.StatusOK)
		var page map[string]json.RawMessage
		var entries []string
		if err := json.Unmarshal(res.body, &page); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if err := json.Unmarshal(page[field], &entries); err != nil {
			t.Fatalf("GET %s: %s: %v", path, field, err)
		}
		all = append(all, entries...)
		link := res.Header.Get("Link")
		if link == "" {
			return all
		}
		next, _, ok := strings.Cut(strings.TrimPrefix(link, "<"), ">")
		if !ok {
			t.Fatalf("GET %s: Link %q", path, link)
		}
		if i := strings.Index(next, "/v2/"); i > 0 {
			next = next[i:]
		}
		path = next
	}
	t.Fatalf("listing from %s never ended", path)
	return nil
}
