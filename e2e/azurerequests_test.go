package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// TestChunkedPushOnAzureReadsNoBlockList: a push in PATCHes on one
// instance never reads the upload's block list back: the first PATCH
// starts the write knowing no write was there (driver.NewWriter), each
// later request goes on from the writer the one before closed
// (driver.Reopen). Before, each PATCH and the PUT sent a Get Block List
// first, a round trip through the link that returns every block ID so far
// (docs/benchmarks.md, S2 on Azure). Each 8 MiB PATCH is two blocks of
// 4 MiB, and the blob is exact.
func TestChunkedPushOnAzureReadsNoBlockList(t *testing.T) {
	a := testenv.StartAzurite(t)
	var reqs testenv.Requests
	url := testenv.StoreProxy(t, a.ServiceURL, false, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		reqs.Note(r)
		next.ServeHTTP(w, r)
	})
	cfg := fmt.Sprintf("version: 0.1\nstorage:\n  azure:\n    accountname: %s\n    accountkey: %s\n    container: %s\n    serviceurl: %s\nhttp:\n  secret: e2e\n",
		a.Account, a.Key, a.Container(t), url)
	base := "http://" + testenv.StartBerth(t, cfg)

	const chunk = 8 << 20
	content := randomBytes(t, 3*chunk+100)
	d := digest.FromBytes(content)
	res := do(t, http.MethodPost, base+"/v2/azure/app/blobs/uploads/", nil, nil)
	expectStatus(t, res, http.StatusAccepted)
	count := func(step string, blocks int) {
		t.Helper()
		got := 0
		for _, r := range reqs.Take() {
			if strings.HasPrefix(r, http.MethodGet+" ") && strings.Contains(r, "comp=blocklist") {
				t.Errorf("%s sent %s", step, r)
			}
			if strings.HasPrefix(r, http.MethodPut+" ") && strings.HasSuffix(r, "&comp=block") {
				got++
			}
		}
		if got != blocks {
			t.Errorf("%s staged %d blocks, want %d", step, got, blocks)
		}
	}
	reqs.Take()
	for i := range 3 {
		res = do(t, http.MethodPatch, base+uploadPath(t, res), content[i*chunk:(i+1)*chunk], map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", i*chunk, (i+1)*chunk-1),
		})
		expectStatus(t, res, http.StatusAccepted)
		count(fmt.Sprintf("PATCH %d", i+1), 2)
	}
	loc := uploadPath(t, res)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	res = do(t, http.MethodPut, base+loc+sep+"digest="+d.String(), content[3*chunk:], nil)
	expectStatus(t, res, http.StatusCreated)
	count("PUT", 1)
	got := do(t, http.MethodGet, base+"/v2/azure/app/blobs/"+d.String(), nil, nil)
	expectStatus(t, got, http.StatusOK)
	if digest.FromBytes(got.body) != d {
		t.Fatalf("served content is not %s", d)
	}
}
