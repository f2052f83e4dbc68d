package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// s3Config is a Berth config on bucket of m; every instance of one
// deployment shares it, http.secret included.
func s3Config(m *testenv.MinIO, bucket string) string {
	return `version: 0.1
log:
  level: info
storage:
` + s3Storage(m, bucket, "chunksize: 5242880") + `  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:5000
  secret: shared-by-both-instances
`
}

// s3Storage is the s3 part of a storage section (indented for "storage:")
// on bucket of m; each of extra is one more "key: value" of it.
func s3Storage(m *testenv.MinIO, bucket string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `  s3:
    accesskey: %s
    secretkey: %s
    region: %s
    regionendpoint: %s
    forcepathstyle: true
    bucket: %s
    secure: false
`, m.AccessKey, m.SecretKey, m.Region, m.Endpoint, bucket)
	for _, e := range extra {
		b.WriteString("    " + e + "\n")
	}
	return b.String()
}

// TestTwoInstancesShareOneS3Bucket runs two Berth processes on one MinIO
// bucket: an upload started on one is continued and finished on the other,
// with chunks crossing S3's 5 MiB part boundary, and an image pushed
// through one is pulled through the other with docker.
func TestTwoInstancesShareOneS3Bucket(t *testing.T) {
	m := testenv.StartMinIO(t)
	cfg := s3Config(m, m.Bucket(t))
	a := "http://" + testenv.StartBerth(t, cfg)
	b := "http://" + testenv.StartBerth(t, cfg)

	blob := make([]byte, 7<<20+123)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	want := digest.FromBytes(blob)
	chunks := [][]byte{blob[:3<<20], blob[3<<20 : 6<<20], blob[6<<20:]}

	res := do(t, http.MethodPost, a+"/v2/shared/app/blobs/uploads/", nil, nil)
	expectStatus(t, res, http.StatusAccepted)
	path := uploadPath(t, res)
	offset := 0
	// Alternate instances: B, A, then B finishes with PUT.
	for i, base := range []string{b, a} {
		hdr := map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", offset, offset+len(chunks[i])-1),
		}
		res := do(t, http.MethodPatch, base+path, chunks[i], hdr)
		expectStatus(t, res, http.StatusAccepted)
		offset += len(chunks[i])
		if got, want := res.Header.Get("Range"), fmt.Sprintf("0-%d", offset-1); got != want {
			t.Fatalf("PATCH %d on %s: Range %q, want %q", i, base, got, want)
		}
		path = uploadPath(t, res)
	}
	// The other instance reports the same progress.
	status := do(t, http.MethodGet, a+path, nil, nil)
	expectStatus(t, status, http.StatusNoContent)
	if got, want := status.Header.Get("Range"), fmt.Sprintf("0-%d", offset-1); got != want {
		t.Fatalf("upload status on the other instance: Range %q, want %q", got, want)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	res = do(t, http.MethodPut, b+path+sep+"digest="+want.String(), chunks[2],
		map[string]string{"Content-Type": "application/octet-stream"})
	expectStatus(t, res, http.StatusCreated)

	for _, base := range []string{a, b} {
		res := do(t, http.MethodGet, base+"/v2/shared/app/blobs/"+want.String(), nil, nil)
		expectStatus(t, res, http.StatusOK)
		if got := digest.FromBytes(res.body); got != want {
			t.Errorf("GET from %s: content digest %s, want %s", base, got, want)
		}
	}

	// docker push through A, docker pull through B.
	docker := testenv.Docker(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("DOCKER_BUILDKIT", "0")
	pushRef := strings.TrimPrefix(a, "http://") + "/shared/image:1.0"
	pullRef := strings.TrimPrefix(b, "http://") + "/shared/image:1.0"
	dockerRoundTrip(t, docker, buildImageContext(t), pushRef, pullRef)
}

type response struct {
	*http.Response
	body []byte
}

func do(t *testing.T, method, url string, body []byte, hdr map[string]string) response {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res, b}
}

func expectStatus(t *testing.T, res response, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", res.Request.Method, res.Request.URL, res.StatusCode, want, res.body)
	}
}

// uploadPath is the path (and query) of the upload's Location, which may be
// absolute and name the instance that answered.
func uploadPath(t *testing.T, res response) string {
	t.Helper()
	loc := res.Header.Get("Location")
	if loc == "" {
		t.Fatal("no Location header")
	}
	if i := strings.Index(loc, "/v2/"); i > 0 {
		loc = loc[i:]
	}
	return loc
}
