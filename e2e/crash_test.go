//go:build unix

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// These tests kill or freeze a real `berth serve` in the middle of a
// PATCH, on the file system and on MinIO, with a second instance on the
// same storage. The session lease is shortened through its config keys
// so that a dead instance blocks the session for seconds, not minutes.

const (
	crashLease = 5 * time.Second
	crashSkew  = 2 * time.Second
)

var crashLeaseConfig = fmt.Sprintf("berth:\n  storage:\n    uploadlease: %s\n    leaseskew: %s\n", crashLease, crashSkew)

// pair is two instances on one storage; a is the one the test crashes.
type pair struct {
	a, b   string
	pa, pb *testenv.Process
}

func crashPairs() []struct {
	name  string
	start func(t *testing.T) pair
} {
	start := func(t *testing.T, cfg string) pair {
		cfg += crashLeaseConfig
		a, pa := testenv.StartBerthProcess(t, cfg)
		b, pb := testenv.StartBerthProcess(t, cfg)
		return pair{"http://" + a, "http://" + b, pa, pb}
	}
	return []struct {
		name  string
		start func(t *testing.T) pair
	}{
		{"filesystem", func(t *testing.T) pair {
			return start(t, filesystemConfig(t.TempDir())+"  secret: shared-by-every-instance\n")
		}},
		{"s3", func(t *testing.T) pair {
			m := testenv.StartMinIO(t)
			return start(t, s3Config(m, m.Bucket(t)))
		}},
	}
}

// crashChunk is what a PATCH sends before its instance dies: past the S3
// driver's 5 MiB part on MinIO.
const crashChunk = 3 << 20

// TestUploadSurvivesKilledInstance: an instance is killed (SIGKILL) with
// two PATCHes half sent. While the dead request's claim lives, the other
// instance refuses the sessions with 416 and the Range of the last request
// that ended; once it lapsed (term and skew), each session resumes from
// the Range a GET reports. The commit stores exactly the pushed bytes,
// though the dead request saved no digest state, and a wrong digest is
// refused.
func TestUploadSurvivesKilledInstance(t *testing.T) {
	for _, tc := range crashPairs() {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.start(t)
			const repo = "crash/app"
			right := randomBytes(t, 3*crashChunk)
			wrong := randomBytes(t, 3*crashChunk)
			paths := map[string]string{}
			for name, content := range map[string][]byte{"right": right, "wrong": wrong} {
				path := startSession(t, p.a, repo)
				res := do(t, http.MethodPatch, p.a+path, content[:crashChunk], nil)
				expectStatus(t, res, http.StatusAccepted)
				paths[name] = uploadPath(t, res)
				// Half the body is sent; the rest never is.
				stream(t, http.MethodPatch, p.a+paths[name], nil).write(content[crashChunk : 2*crashChunk])
			}
			pause()
			p.pa.Crash(t)

			for name, path := range paths {
				get := do(t, http.MethodGet, p.b+path, nil, nil)
				expectStatus(t, get, http.StatusNoContent)
				if r := get.Header.Get("Range"); r != uploadRange(crashChunk) {
					t.Errorf("%s: GET while the dead claim lives: Range %q, want %q (the last request that ended)", name, r, uploadRange(crashChunk))
				}
				res := do(t, http.MethodPatch, p.b+path, []byte("more"), nil)
				if res.StatusCode != http.StatusRequestedRangeNotSatisfiable || res.Header.Get("Range") == "" || !bytes.Contains(res.body, []byte("BLOB_UPLOAD_INVALID")) {
					t.Fatalf("%s: PATCH while the dead claim lives: %d %s (Range %q), want 416 BLOB_UPLOAD_INVALID with a Range", name, res.StatusCode, res.body, res.Header.Get("Range"))
				}
			}
			time.Sleep(crashLease + crashSkew + time.Second)

			d := digest.FromBytes(right)
			path := resumeFromRange(t, p.b, paths["right"], right)
			put := do(t, http.MethodPut, p.b+path+"&digest="+d.String(), nil, nil)
			expectStatus(t, put, http.StatusCreated)
			checkContent(t, p.b, repo, d, right)
			// The digest was checked against the stored bytes, as no
			// request vouched for a digest state.
			p.pb.WaitLogLine(t, 10*time.Second, "upload digest state not trusted")

			// The bytes of the other session, under a digest that is not
			// theirs: one byte differs in the part the dead request wrote.
			forged := bytes.Clone(wrong)
			forged[crashChunk+crashChunk/2] ^= 1
			bad := digest.FromBytes(forged)
			path = resumeFromRange(t, p.b, paths["wrong"], wrong)
			put = do(t, http.MethodPut, p.b+path+"&digest="+bad.String(), nil, nil)
			if put.StatusCode != http.StatusBadRequest || !bytes.Contains(put.body, []byte("DIGEST_INVALID")) {
				t.Fatalf("PUT with a digest the stored bytes do not have: %d %s, want 400 DIGEST_INVALID", put.StatusCode, put.body)
			}
			if res := do(t, http.MethodHead, p.b+"/v2/"+repo+"/blobs/"+bad.String(), nil, nil); res.StatusCode != http.StatusNotFound {
				t.Errorf("HEAD of the refused digest: %d, want 404", res.StatusCode)
			}
		})
	}
}

// TestFrozenInstanceWritesNothingAfterItsLease: an instance is frozen
// (SIGSTOP) in the middle of a PATCH, past its lease. The other instance
// takes the session over and completes the push, and completes another
// push beside it. Thawed, the frozen request goes on receiving its body:
// it must fail, and write nothing into the session or any blob.
func TestFrozenInstanceWritesNothingAfterItsLease(t *testing.T) {
	for _, tc := range crashPairs() {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.start(t)
			const repo = "frozen/app"
			content := randomBytes(t, 3*crashChunk)
			path := startSession(t, p.a, repo)
			res := do(t, http.MethodPatch, p.a+path, content[:crashChunk], nil)
			expectStatus(t, res, http.StatusAccepted)
			path = uploadPath(t, res)
			frozen := stream(t, http.MethodPatch, p.a+path, nil)
			frozen.write(content[crashChunk : 2*crashChunk])
			pause()
			p.pa.Freeze(t)
			time.Sleep(crashLease + crashSkew + time.Second)

			d := digest.FromBytes(content)
			taken := resumeFromRange(t, p.b, path, content)
			put := do(t, http.MethodPut, p.b+taken+"&digest="+d.String(), nil, nil)
			expectStatus(t, put, http.StatusCreated)
			other := randomBytes(t, crashChunk+5)
			od := digest.FromBytes(other)
			opath := startSession(t, p.b, repo)
			res = do(t, http.MethodPatch, p.b+opath, other, nil)
			expectStatus(t, res, http.StatusAccepted)
			expectStatus(t, do(t, http.MethodPut, p.b+uploadPath(t, res)+"&digest="+od.String(), nil, nil), http.StatusCreated)

			p.pa.Thaw(t)
			frozen.write(bytes.Repeat([]byte("written after the lease lapsed "), 64<<10))
			late := frozen.finish()
			if late.err == nil && late.status < 400 {
				t.Errorf("the thawed PATCH answered %d: it must fail, its session belongs to another request", late.status)
			}
			t.Logf("thawed PATCH: %d %s %v", late.status, late.body, late.err)
			for _, base := range []string{p.a, p.b} {
				checkContent(t, base, repo, d, content)
				checkContent(t, base, repo, od, other)
				if res := do(t, http.MethodGet, base+path, nil, nil); res.StatusCode != http.StatusNotFound {
					t.Errorf("%s: GET of the committed session: %d, want 404 (nothing written back)", base, res.StatusCode)
				}
			}
		})
	}
}

// resumeFromRange asks base where the session at path stands and sends
// the rest of content from there, as a client resuming does; it returns
// the session's path for the PUT.
func resumeFromRange(t *testing.T, base, path string, content []byte) string {
	t.Helper()
	get := do(t, http.MethodGet, base+path, nil, nil)
	expectStatus(t, get, http.StatusNoContent)
	from := rangeEnd(t, get.Header.Get("Range")) + 1
	if from > int64(len(content)) {
		t.Fatalf("GET reports %d bytes, more than the %d pushed", from, len(content))
	}
	t.Logf("session resumed at %d of %d bytes", from, len(content))
	res := do(t, http.MethodPatch, base+uploadPath(t, get), content[from:], map[string]string{
		"Content-Range": fmt.Sprintf("%d-%d", from, len(content)-1),
		"Content-Type":  "application/octet-stream",
	})
	expectStatus(t, res, http.StatusAccepted)
	return uploadPath(t, res)
}

// rangeEnd reads a session's Range, "0-<last byte>"; "0-0" is an empty
// session, as Distribution reports it (a session of one byte does not
// occur in these tests).
func rangeEnd(t *testing.T, r string) int64 {
	t.Helper()
	_, last, ok := strings.Cut(r, "-")
	n, err := strconv.ParseInt(last, 10, 64)
	if !ok || err != nil {
		t.Fatalf("Range %q", r)
	}
	if n == 0 {
		return -1
	}
	return n
}

func uploadRange(size int) string { return fmt.Sprintf("0-%d", size-1) }

// checkContent asserts that base serves exactly content as d in repo.
func checkContent(t *testing.T, base, repo string, d digest.Digest, content []byte) {
	t.Helper()
	res := do(t, http.MethodGet, base+"/v2/"+repo+"/blobs/"+d.String(), nil, nil)
	expectStatus(t, res, http.StatusOK)
	if !bytes.Equal(res.body, content) {
		t.Errorf("%s serves %d bytes (digest %s) as %s, want its %d", base, len(res.body), digest.FromBytes(res.body), d, len(content))
	}
}
