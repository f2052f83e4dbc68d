//go:build unix

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// Berth answers an upload request once its bytes are stored and writes the
// release of the session's claim as the answer goes out. These tests send
// the client's next request to another instance, as a round-robin load
// balancer does, while that release is still on its way.

// isRelease tells a rewrite of an upload session's claim (a release or a
// renewal) from its create, which is conditional.
func isRelease(r *http.Request) bool {
	return r.Method == http.MethodPut && uploadClaim.MatchString(r.URL.Path) && r.Header.Get("If-None-Match") == ""
}

// releaseProxy stands between instance A and MinIO and passes A's claim
// rewrites through hold, which delays them or never lets them through.
func releaseProxy(t *testing.T, m *testenv.MinIO, bucket string, hold func(r *http.Request) bool) string {
	url := testenv.StoreProxy(t, m.Endpoint, true, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if isRelease(r) && !hold(r) {
			http.Error(w, "held back", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
	return strings.Replace(s3Config(m, bucket), "regionendpoint: "+m.Endpoint, "regionendpoint: "+url, 1)
}

// TestNextRequestOnAnotherInstanceFindsTheAnswer: PATCH on A, then at once
// GET, PATCH and PUT on B (and the other way round), many times: B reports
// the size A acknowledged and is never busy. With A's releases delayed by
// a proxy, the window is wide; before B waited for a live claim, it
// answered 416 (busy) with the size before A's PATCH.
func TestNextRequestOnAnotherInstanceFindsTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{{"direct", 0}, {"delayed", 300 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			m := testenv.StartMinIO(t)
			bucket := m.Bucket(t)
			a := "http://" + testenv.StartBerth(t, releaseProxy(t, m, bucket, func(r *http.Request) bool {
				time.Sleep(tc.delay)
				return true
			}))
			b := "http://" + testenv.StartBerth(t, s3Config(m, bucket))
			const chunk = 1<<20 + 7
			for i := range 6 {
				first, other := a, b
				if i%2 == 1 {
					first, other = b, a
				}
				content := randomBytes(t, 3*chunk)
				repo := fmt.Sprintf("next/app%d", i)
				path := startSession(t, first, repo)
				for j, base := range []string{first, other} {
					res := do(t, http.MethodPatch, base+path, content[j*chunk:(j+1)*chunk], map[string]string{
						"Content-Type":  "application/octet-stream",
						"Content-Range": fmt.Sprintf("%d-%d", j*chunk, (j+1)*chunk-1),
					})
					expectStatus(t, res, http.StatusAccepted)
					path = uploadPath(t, res)
					// At once on the other instance: the size just
					// acknowledged.
					get := do(t, http.MethodGet, map[string]string{first: other, other: first}[base]+path, nil, nil)
					expectStatus(t, get, http.StatusNoContent)
					if r := get.Header.Get("Range"); r != uploadRange((j+1)*chunk) {
						t.Fatalf("round %d: GET right after the PATCH's answer: Range %q, want %q", i, r, uploadRange((j+1)*chunk))
					}
				}
				d := digest.FromBytes(content)
				put := do(t, http.MethodPut, first+path+"&digest="+d.String(), content[2*chunk:], nil)
				expectStatus(t, put, http.StatusCreated)
				checkContent(t, other, repo, d, content)
			}
		})
	}
}

// TestKilledAfterTheAnswerLosesNothing: A answers a PATCH whose release
// never reaches the store, and is killed. While its claim lives, B
// refuses the session; once it lapsed, B takes it over, finds every byte
// A acknowledged, and commits their digest.
func TestKilledAfterTheAnswerLosesNothing(t *testing.T) {
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t)
	stop := make(chan struct{})
	cfgA := releaseProxy(t, m, bucket, func(r *http.Request) bool {
		// Read, so that the proxy notices A's connection closing.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
		return false
	})
	// Before the proxy closes, which waits for its requests.
	t.Cleanup(func() { close(stop) })
	addrA, pa := testenv.StartBerthProcess(t, cfgA+crashLeaseConfig)
	b := "http://" + testenv.StartBerth(t, s3Config(m, bucket)+crashLeaseConfig)
	a := "http://" + addrA

	const repo = "killed/app"
	content := randomBytes(t, 3*crashChunk)
	path := startSession(t, a, repo)
	for j := range 2 {
		res := do(t, http.MethodPatch, a+path, content[j*crashChunk:(j+1)*crashChunk], map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", j*crashChunk, (j+1)*crashChunk-1),
		})
		expectStatus(t, res, http.StatusAccepted)
		path = uploadPath(t, res)
	}
	pa.Crash(t)
	res := do(t, http.MethodPatch, b+path, content[2*crashChunk:], nil)
	if res.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("PATCH on B while A's unreleased claim lives: %d %s, want 416", res.StatusCode, res.body)
	}
	time.Sleep(crashLease + crashSkew + time.Second)

	get := do(t, http.MethodGet, b+path, nil, nil)
	expectStatus(t, get, http.StatusNoContent)
	if r := get.Header.Get("Range"); r != uploadRange(2*crashChunk) {
		t.Fatalf("GET on B once A's claim lapsed: Range %q, want %q (every acknowledged byte)", r, uploadRange(2*crashChunk))
	}
	path = resumeFromRange(t, b, path, content)
	d := digest.FromBytes(content)
	put := do(t, http.MethodPut, b+path+"&digest="+d.String(), nil, nil)
	expectStatus(t, put, http.StatusCreated)
	checkContent(t, b, repo, d, content)
}
