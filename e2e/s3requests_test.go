package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// s3Counter stands between Berth and MinIO and notes every request Berth
// sends, as "METHOD /bucket/key?query".
type s3Counter struct {
	url string
	testenv.Requests
}

func newS3Counter(t *testing.T, upstream string) *s3Counter {
	t.Helper()
	c := &s3Counter{}
	// Berth signs for the proxy's address, so its Host goes on.
	c.url = testenv.StoreProxy(t, upstream, true, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		c.Note(r)
		next.ServeHTTP(w, r)
	})
	return c
}

// uploadClaim matches the key of an upload session's lease claim: a
// numbered object in the session's directory, or in its lease/ directory
// for a session of a build before December 2026.
var uploadClaim = regexp.MustCompile(`/_uploads/[^/?]+/(lease/)?[0-9]{12}(\?|$)`)

// waitClaimWrites waits until n writes of upload claims (creates, and
// the size a kept claim's request left) were noted since the last Take:
// the latter is written after the client is answered, once no request
// came for 20 ms, and reaches the store after the answer.
func (c *s3Counter) waitClaimWrites(t *testing.T, n int) {
	t.Helper()
	claimWrite := func(r string) bool { return strings.HasPrefix(r, http.MethodPut+" ") && uploadClaim.MatchString(r) }
	for deadline := time.Now().Add(30 * time.Second); c.Count(claimWrite) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d claim writes noted, want %d", c.Count(claimWrite), n)
		}
	}
}

// TestDockerStylePushS3Requests counts the S3 requests of one layer pushed
// as docker pushes it (POST, one streamed PATCH, PUT ?digest= with no
// body), for a layer under S3's 5 MiB part and one over it. Berth's CPU
// on an object store goes mostly to its requests (docs/benchmarks.md, "S3
// and S8b again"), so their number is pinned: a change that adds one per
// layer shows here first.
func TestDockerStylePushS3Requests(t *testing.T) {
	m := testenv.StartMinIO(t)
	counter := newS3Counter(t, m.Endpoint)
	cfg := strings.Replace(s3Config(m, m.Bucket(t)), "regionendpoint: "+m.Endpoint, "regionendpoint: "+counter.url, 1)
	base := "http://" + testenv.StartBerth(t, cfg)

	var pushed []digest.Digest
	var sizes []int
	for _, tc := range []struct {
		name string
		size int
		// Requests of each step. Before the session cost nothing until
		// its first bytes, kept its digest state in the lease and its
		// tail in memory: 5, 5 and 12 (22) for the small layer, 5, 7
		// and 16 (28) for the large one. Before the PATCH kept its claim
		// for the PUT (storage/uploadkeep.go): 2, 4 and 9 (15), and 1, 6
		// and 13 (20).
		post, patch, put int
	}{
		// POST: startedat, and for this first push to the repository on
		// this instance its catalog marker (storage/catalogindex.go),
		// which the next POST does not write again. PATCH: startedat,
		// the claim, the tail, the size it left written into the claim,
		// which it keeps for the PUT (no release). PUT: HEAD of the
		// blob, the link, the blob, the state object gone, the session
		// gone (a listing and a batch delete) and its unfinished writes
		// (a listing).
		{"small", 300 << 10, 2, 4, 7},
		// The PATCH also starts a multipart upload and sends a part; the
		// PUT sends the tail as the last part, completes the upload and
		// moves it (HEAD, copy, delete).
		{"large", 7<<20 + 5, 1, 6, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := randomBytes(t, tc.size)
			d := digest.FromBytes(content)
			counter.Take()
			res := do(t, http.MethodPost, base+"/v2/count/app/blobs/uploads/", nil, nil)
			expectStatus(t, res, http.StatusAccepted)
			post := counter.Take()
			res = do(t, http.MethodPatch, base+uploadPath(t, res), content, map[string]string{"Content-Type": "application/octet-stream"})
			expectStatus(t, res, http.StatusAccepted)
			// The size the PATCH left goes into its claim once no
			// request followed for 20 ms: it counts once it was sent
			// (docker's PUT comes sooner, and it is not written at all).
			// The PUT follows within the claim's keep: a release sent
			// before it would be counted in it.
			counter.waitClaimWrites(t, 2)
			patch := counter.Take()
			loc := uploadPath(t, res)
			sep := "?"
			if strings.Contains(loc, "?") {
				sep = "&"
			}
			res = do(t, http.MethodPut, base+loc+sep+"digest="+d.String(), nil, nil)
			expectStatus(t, res, http.StatusCreated)
			put := counter.Take()
			for _, step := range []struct {
				name string
				reqs []string
				want int
			}{{"POST", post, tc.post}, {"PATCH", patch, tc.patch}, {"PUT", put, tc.put}} {
				if len(step.reqs) != step.want {
					t.Errorf("%s sent %d requests to S3, want %d:\n  %s", step.name, len(step.reqs), step.want, strings.Join(step.reqs, "\n  "))
				}
			}
			pushed, sizes = append(pushed, d), append(sizes, tc.size)
		})
	}
	if len(pushed) != 2 {
		return
	}

	// A manifest of the two: the first as its config, the second as its
	// layer. Both were committed on this instance, which knows them: it
	// reads their links (a manifest is checked against the store's links)
	// and, after its revision link, asks the store for each blob and the
	// manifest (gcfence.go), but sends no HEAD for a blob before. Before
	// the commit remembered what it published: 16, a HEAD for each blob
	// more; and 14 before the manifest's place was asked with a HEAD
	// alone (a Stat lists after a HEAD that finds nothing). The rest: the
	// manifest, its revision link, the live collection (two listings and
	// the lease), the tag's index and current links.
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		pushed[0], sizes[0], pushed[1], sizes[1])
	counter.Take()
	res := do(t, http.MethodPut, base+"/v2/count/app/manifests/v1", []byte(manifest), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	expectStatus(t, res, http.StatusCreated)
	var reqs []string
	for _, q := range counter.Take() {
		// Read every few seconds by whichever request comes (gcwatch.go).
		if !strings.Contains(q, "/_berth/gc/generation") {
			reqs = append(reqs, q)
		}
	}
	if len(reqs) != 13 {
		t.Errorf("the manifest PUT sent %d requests to S3, want 13:\n  %s", len(reqs), strings.Join(reqs, "\n  "))
	}
	// Read only now: a GET remembers the blob it serves, as the commit
	// should have.
	for _, d := range pushed {
		got := do(t, http.MethodGet, base+"/v2/count/app/blobs/"+d.String(), nil, nil)
		expectStatus(t, got, http.StatusOK)
		if digest.FromBytes(got.body) != d {
			t.Fatalf("served content is not %s", d)
		}
	}
}

// TestChunkedPushSendsPartsTogether: a PATCH of 16 MiB with its
// Content-Length reaches S3 as three parts of 5.33 MiB, sent together,
// rather than a 10 MiB part and a 6 MiB tail after it (docs/benchmarks.md,
// "S2 again"); the blob is exact.
func TestChunkedPushSendsPartsTogether(t *testing.T) {
	m := testenv.StartMinIO(t)
	counter := newS3Counter(t, m.Endpoint)
	cfg := strings.Replace(s3Config(m, m.Bucket(t)), "regionendpoint: "+m.Endpoint, "regionendpoint: "+counter.url, 1)
	cfg = strings.Replace(cfg, "chunksize: 5242880", "chunksize: 10485760", 1)
	base := "http://" + testenv.StartBerth(t, cfg)

	const chunk = 16 << 20
	content := randomBytes(t, 2*chunk+100)
	d := digest.FromBytes(content)
	res := do(t, http.MethodPost, base+"/v2/split/app/blobs/uploads/", nil, nil)
	expectStatus(t, res, http.StatusAccepted)
	// The first PATCH starts the write, the second goes on with the
	// writer the first closed (driver.Reopen): the length gets through
	// both.
	for i := range 2 {
		counter.Take()
		res = do(t, http.MethodPatch, base+uploadPath(t, res), content[i*chunk:(i+1)*chunk], map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", i*chunk, (i+1)*chunk-1),
		})
		expectStatus(t, res, http.StatusAccepted)
		parts := 0
		for _, r := range counter.Take() {
			if strings.HasPrefix(r, http.MethodPut+" ") && strings.Contains(r, "partNumber=") {
				parts++
			}
		}
		if parts != 3 {
			t.Errorf("16 MiB PATCH %d sent %d parts, want 3", i+1, parts)
		}
	}
	loc := uploadPath(t, res)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	res = do(t, http.MethodPut, base+loc+sep+"digest="+d.String(), content[2*chunk:], nil)
	expectStatus(t, res, http.StatusCreated)
	got := do(t, http.MethodGet, base+"/v2/split/app/blobs/"+d.String(), nil, nil)
	expectStatus(t, got, http.StatusOK)
	if digest.FromBytes(got.body) != d {
		t.Fatalf("served content is not %s", d)
	}
}
