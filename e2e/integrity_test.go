package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// These tests play a client with push rights on one repository that tries
// to make a digest serve other bytes than its own: for everyone, since
// blobs are shared across repositories. Each runs on the file system and
// on MinIO, with one instance and with two sharing the storage, the
// attacker's requests spread over both.

// deployment is a set of Berth instances on one storage.
type deployment struct {
	name      string
	instances func(t *testing.T) []string
}

func integrityDeployments() []deployment {
	fs := func(n int) func(t *testing.T) []string {
		return func(t *testing.T) []string {
			cfg := filesystemConfig(t.TempDir()) + "  secret: shared-by-every-instance\n"
			var out []string
			for range n {
				out = append(out, "http://"+testenv.StartBerth(t, cfg))
			}
			return out
		}
	}
	s3 := func(n int) func(t *testing.T) []string {
		return func(t *testing.T) []string {
			m := testenv.StartMinIO(t)
			cfg := s3Config(m, m.Bucket(t))
			var out []string
			for range n {
				out = append(out, "http://"+testenv.StartBerth(t, cfg))
			}
			return out
		}
	}
	return []deployment{
		{"filesystem", fs(1)},
		{"filesystem-two-instances", fs(2)},
		{"s3", s3(1)},
		{"s3-two-instances", s3(2)},
	}
}

// attackSize crosses the S3 driver's 5 MiB part in the configs above.
const attackSize = 6<<20 + 17

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pause lets a request's bytes reach the server before the next step. It
// orders the attack as an attacker would; no result depends on it.
func pause() { time.Sleep(time.Second) }

// TestUploadSessionResistsInterleavedRequests: two PATCHes on one session
// at once, and a PATCH whose body arrives after the session's PUT, must
// never make a digest serve bytes that are not its content, nor keep the
// rightful owner of those bytes from storing them afterwards.
func TestUploadSessionResistsInterleavedRequests(t *testing.T) {
	for _, dep := range integrityDeployments() {
		t.Run(dep.name, func(t *testing.T) {
			inst := dep.instances(t)
			first, last := inst[0], inst[len(inst)-1]
			t.Run("ConcurrentPatches", func(t *testing.T) {
				legit := randomBytes(t, attackSize)
				evil := randomBytes(t, attackSize)
				d := digest.FromBytes(legit)
				path := startSession(t, first, "mallory/app")

				// A and B, on the other instance, both open the session
				// before either sends a byte; A sends the legitimate
				// bytes, B as many other bytes, B ends, then A.
				a := stream(t, http.MethodPatch, first+path, nil)
				b := stream(t, http.MethodPatch, last+path, nil)
				pause()
				a.write(legit)
				pause()
				b.write(evil)
				resB := b.finish()
				resA := a.finish()
				refused := 0
				for _, res := range []streamResult{resA, resB} {
					switch {
					case res.err != nil:
						t.Logf("a PATCH ended without an answer: %v", res.err)
					case res.status == http.StatusRequestedRangeNotSatisfiable:
						refused++
						if res.header.Get("Range") == "" || !bytes.Contains(res.body, []byte("BLOB_UPLOAD_INVALID")) {
							t.Errorf("PATCH refused without the session's Range and BLOB_UPLOAD_INVALID: %s %v", res.body, res.header)
						}
					case res.status != http.StatusAccepted:
						t.Errorf("PATCH: status %d %s", res.status, res.body)
					}
				}
				if refused != 1 {
					t.Errorf("%d of two overlapping PATCHes on one session were refused, want exactly 1", refused)
				}
				put := do(t, http.MethodPut, first+path+"&digest="+d.String(), nil, nil)
				t.Logf("PUT ?digest=<legitimate bytes>: %d %s (other bytes: %s)", put.StatusCode, put.body, digest.FromBytes(evil))
				checkServes(t, inst, "mallory/app", d, put.StatusCode == http.StatusCreated)
				victimPushes(t, inst, legit)
			})
			t.Run("PatchStalledAcrossPut", func(t *testing.T) {
				legit := randomBytes(t, attackSize)
				d := digest.FromBytes(legit)
				path := startSession(t, first, "mallory/app")
				res := do(t, http.MethodPatch, first+path, legit, nil)
				expectStatus(t, res, http.StatusAccepted)
				path = uploadPath(t, res)

				// The stalled PATCH has sent its headers; the PUT comes
				// before its body.
				x := stream(t, http.MethodPatch, last+path, nil)
				pause()
				put := do(t, http.MethodPut, first+path+"&digest="+d.String(), nil, nil)
				t.Logf("PUT while a PATCH is open: %d %s", put.StatusCode, put.body)
				if put.StatusCode != http.StatusCreated && put.StatusCode != http.StatusRequestedRangeNotSatisfiable {
					t.Errorf("PUT while a PATCH is open: status %d, want 416 (or 201 for the bytes it has)", put.StatusCode)
				}
				x.write(bytes.Repeat([]byte("appended after the commit "), 1000))
				resX := x.finish()
				t.Logf("stalled PATCH: %d %v", resX.status, resX.err)
				checkServes(t, inst, "mallory/app", d, put.StatusCode == http.StatusCreated)
				if put.StatusCode != http.StatusCreated {
					// The session now holds more than the legitimate
					// bytes: committing it as them must fail.
					again := do(t, http.MethodPut, first+path+"&digest="+d.String(), nil, nil)
					if again.StatusCode == http.StatusCreated {
						checkServes(t, inst, "mallory/app", d, true)
					}
				}
				victimPushes(t, inst, legit)
			})
		})
	}
}

// startSession opens an upload session in repo and returns its path.
func startSession(t *testing.T, base, repo string) string {
	t.Helper()
	res := do(t, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	expectStatus(t, res, http.StatusAccepted)
	return uploadPath(t, res)
}

// checkServes asserts that every instance serves d from repo as bytes
// whose digest is d, when linked is true, and in any case never serves
// other bytes under d.
func checkServes(t *testing.T, inst []string, repo string, d digest.Digest, linked bool) {
	t.Helper()
	for _, base := range inst {
		res := do(t, http.MethodGet, base+"/v2/"+repo+"/blobs/"+d.String(), nil, nil)
		switch {
		case res.StatusCode == http.StatusOK:
			if got := digest.FromBytes(res.body); got != d {
				t.Errorf("%s serves %d bytes of digest %s under %s", base, len(res.body), got, d)
			}
		case linked:
			t.Errorf("%s: GET of the committed blob: %d %s", base, res.StatusCode, res.body)
		}
	}
}

// victimPushes has another repository push the legitimate bytes, as their
// owner would after the attack: stored, and served as they are.
func victimPushes(t *testing.T, inst []string, content []byte) {
	t.Helper()
	d := digest.FromBytes(content)
	res := do(t, http.MethodPost, inst[0]+"/v2/victim/app/blobs/uploads/?digest="+d.String(), content, map[string]string{"Content-Type": "application/octet-stream"})
	expectStatus(t, res, http.StatusCreated)
	for _, base := range inst {
		got := do(t, http.MethodGet, base+"/v2/victim/app/blobs/"+d.String(), nil, nil)
		expectStatus(t, got, http.StatusOK)
		if sum := sha256.Sum256(got.body); !bytes.Equal(got.body, content) {
			t.Errorf("%s serves the victim %d bytes (sha256 %x) under %s", base, len(got.body), sum, d)
		}
	}
}

// streamed is a request whose body is sent piece by piece, over a
// connection of its own: the headers go out at once, each piece of the
// body when written, as a slow or hostile client sends them.
type streamed struct {
	t    *testing.T
	conn net.Conn
	done chan streamResult
	res  *streamResult
}

type streamResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func stream(t *testing.T, method, rawURL string, hdr map[string]string) *streamed {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n", method, u.RequestURI(), u.Host)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	s := &streamed{t: t, conn: conn, done: make(chan streamResult, 1)}
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
		if err != nil {
			s.done <- streamResult{err: err}
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		s.done <- streamResult{status: res.StatusCode, header: res.Header, body: body, err: err}
	}()
	return s
}

// write sends p as one chunk, unless the server has answered already.
func (s *streamed) write(p []byte) {
	select {
	case r := <-s.done:
		s.res = &r
	default:
	}
	if s.res != nil {
		return
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(time.Minute))
	// An error means the server stopped reading: its answer tells why.
	_, _ = fmt.Fprintf(s.conn, "%x\r\n%s\r\n", len(p), p)
}

// finish ends the body and waits for the answer.
func (s *streamed) finish() streamResult {
	if s.res != nil {
		return *s.res
	}
	_, _ = io.WriteString(s.conn, "0\r\n\r\n")
	select {
	case r := <-s.done:
		return r
	case <-time.After(2 * time.Minute):
		s.t.Fatal("no answer in two minutes")
		return streamResult{}
	}
}
