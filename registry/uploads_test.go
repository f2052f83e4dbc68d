package registry

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
	"net/url"
)

// startUpload opens an upload session and returns its Location.
func (s *testServer) startUpload(repo string) string {
	s.t.Helper()
	loc := s.postUpload(repo).header.Get("Location")
	if loc == "" {
		s.t.Fatal("POST returned no Location")
	}
	return loc
}

// withDigest appends the digest parameter to an upload Location.
func withDigest(loc string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + d.String()
}

func TestUploadPostThenPut(t *testing.T) {
	s := newServer(t, nil)
	content := []byte("hello, monolithic world")
	d := digest.FromBytes(content)

	res := s.postUpload("repo")
	id := res.header.Get("Docker-Upload-UUID")
	if id == "" {
		t.Fatal("no Docker-Upload-UUID")
	}
	res.expectHeader(t, "Location", s.srv.URL+"/v2/repo/blobs/uploads/"+id)
	res.expectHeader(t, "Range", "0-0")
	res.expectHeader(t, "Content-Length", "0")

	res = s.do("PUT", withDigest(res.header.Get("Location"), d), content, "Content-Type", "application/octet-stream")
	res.expect(t, http.StatusCreated, "")
	res.expectHeader(t, "Location", s.srv.URL+"/v2/repo/blobs/"+d.String())
	res.expectHeader(t, "Docker-Content-Digest", d.String())

	got := s.do("GET", res.header.Get("Location"), nil)
	got.expect(t, http.StatusOK, "")
	if !bytes.Equal(got.body, content) {
		t.Fatalf("blob body %q, want %q", got.body, content)
	}
	// The session is over.
	s.do("GET", "/v2/repo/blobs/uploads/"+id, nil).expect(t, http.StatusNotFound, CodeBlobUploadUnknown)
}

func TestUploadSinglePostWithDigestReturns201(t *testing.T) {
	s := newServer(t, nil)
	content := []byte("one request")
	d := digest.FromBytes(content)
	res := s.do("POST", "/v2/repo/blobs/uploads/?digest="+d.String(), content)
	res.expect(t, http.StatusCreated, "")
	res.expectHeader(t, "Location", s.srv.URL+"/v2/repo/blobs/"+d.String())
	res.expectHeader(t, "Docker-Content-Digest", d.String())
	s.do("HEAD", "/v2/repo/blobs/"+d.String(), nil).expect(t, http.StatusOK, "")
}

func TestUploadChunked(t *testing.T) {
	s := newServer(t, nil)
	content := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	d := digest.FromBytes(content)
	loc := s.startUpload("repo")

	for _, c := range []struct {
		start, end int
		wantRange  string
	}{{0, 9, "0-9"}, {10, 19, "0-19"}} {
		res := s.do("PATCH", loc, content[c.start:c.end+1],
			"Content-Type", "application/octet-stream",
			"Content-Range", strings.Join([]string{itoa(c.start), itoa(c.end)}, "-"))
		res.expect(t, http.StatusAccepted, "")
		res.expectHeader(t, "Range", c.wantRange)
		res.expectHeader(t, "Content-Length", "0")
		loc = res.header.Get("Location")
	}
	// The last chunk comes with the closing PUT.
	res := s.do("PUT", withDigest(loc, d), content[20:], "Content-Range", "20-"+itoa(len(content)-1))
	res.expect(t, http.StatusCreated, "")
	got := s.do("GET", "/v2/repo/blobs/"+d.String(), nil)
	if !bytes.Equal(got.body, content) {
		t.Fatalf("blob body %q, want %q", got.body, content)
	}
}

func TestUploadChunkOutOfOrderReturns416(t *testing.T) {
	tests := []struct {
		name   string
		method string
		rng    string
	}{
		{"gap", "PATCH", "20-29"},
		{"overlap", "PATCH", "0-9"},
		{"overlap end", "PATCH", "5-14"},
		{"length mismatch", "PATCH", "10-12"},
		{"malformed", "PATCH", "ten-twenty"},
		{"put gap", "PUT", "20-29"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, nil)
			content := []byte(strings.Repeat("x", 30))
			loc := s.startUpload("repo")
			res := s.do("PATCH", loc, content[:10], "Content-Range", "0-9")
			res.expect(t, http.StatusAccepted, "")
			loc = res.header.Get("Location")

			target := loc
			if tt.method == "PUT" {
				target = withDigest(loc, digest.FromBytes(content))
			}
			res = s.do(tt.method, target, content[10:20], "Content-Range", tt.rng)
			res.expect(t, http.StatusRequestedRangeNotSatisfiable, CodeRangeInvalid)
			res.expectHeader(t, "Range", "0-9")
			res.expectHeader(t, "Location", loc)

			// The session survives, unchanged.
			st := s.do("GET", loc, nil)
			st.expect(t, http.StatusNoContent, "")
			st.expectHeader(t, "Range", "0-9")
			st.expectHeader(t, "Location", loc)

			res = s.do("PATCH", loc, content[10:], "Content-Range", "10-29")
			res.expect(t, http.StatusAccepted, "")
			res = s.do("PUT", withDigest(loc, digest.FromBytes(content)), nil)
			res.expect(t, http.StatusCreated, "")
		})
	}
}

func TestUploadStreamedPatch(t *testing.T) {
	s := newServer(t, nil)
	content := bytes.Repeat([]byte("stream"), 1000)
	d := digest.FromBytes(content)
	loc := s.startUpload("repo")
	res := s.do("PATCH", loc, content, "Content-Type", "application/octet-stream")
	res.expect(t, http.StatusAccepted, "")
	res.expectHeader(t, "Range", "0-"+itoa(len(content)-1))
	res = s.do("PUT", withDigest(res.header.Get("Location"), d), nil, "Content-Length", "0")
	res.expect(t, http.StatusCreated, "")
	res.expectHeader(t, "Docker-Content-Digest", d.String())
}

func TestUploadDigestMismatchStoresNothing(t *testing.T) {
	s := newServer(t, nil)
	content := []byte("the real content")
	wrong := digest.FromString("something else")
	loc := s.startUpload("repo")
	res := s.do("PUT", withDigest(loc, wrong), content)
	res.expect(t, http.StatusBadRequest, CodeDigestInvalid)
	s.do("HEAD", "/v2/repo/blobs/"+wrong.String(), nil).expect(t, http.StatusNotFound, "")
	s.do("HEAD", "/v2/repo/blobs/"+digest.FromBytes(content).String(), nil).expect(t, http.StatusNotFound, "")
	s.do("GET", loc, nil).expect(t, http.StatusNotFound, CodeBlobUploadUnknown)

	res = s.do("POST", "/v2/repo/blobs/uploads/?digest="+wrong.String(), content)
	res.expect(t, http.StatusBadRequest, CodeDigestInvalid)
	s.do("HEAD", "/v2/repo/blobs/"+wrong.String(), nil).expect(t, http.StatusNotFound, "")
}

func TestUploadRefusesBadRequests(t *testing.T) {
	s := newServer(t, nil)
	loc := s.startUpload("repo")
	tests := []struct {
		name   string
		method string
		path   string
		status int
		code   Code
	}{
		{"put without digest", "PUT", loc, 400, CodeDigestInvalid},
		{"put malformed digest", "PUT", loc + "?digest=sha256:nothex", 400, CodeDigestInvalid},
		{"put unsupported algorithm", "PUT", loc + "?digest=sha384:" + strings.Repeat("a", 96), 400, CodeDigestInvalid},
		{"post malformed digest", "POST", "/v2/repo/blobs/uploads/?digest=nope", 400, CodeDigestInvalid},
		{"post unknown digest algorithm", "POST", "/v2/repo/blobs/uploads/?digest-algorithm=md5", 400, CodeDigestInvalid},
		{"patch unknown upload", "PATCH", "/v2/repo/blobs/uploads/nosuchupload", 404, CodeBlobUploadUnknown},
		{"get unknown upload", "GET", "/v2/repo/blobs/uploads/nosuchupload", 404, CodeBlobUploadUnknown},
		{"put unknown upload", "PUT", "/v2/repo/blobs/uploads/nosuchupload?digest=" + digest.FromString("").String(), 404, CodeBlobUploadUnknown},
		{"delete unknown upload", "DELETE", "/v2/repo/blobs/uploads/nosuchupload", 404, CodeBlobUploadUnknown},
		{"upload of another repository", "GET", strings.Replace(loc, "/repo/", "/other/", 1), 404, CodeBlobUploadUnknown},
		{"mount malformed digest", "POST", "/v2/repo/blobs/uploads/?mount=bad&from=other", 400, CodeDigestInvalid},
		{"mount invalid from", "POST", "/v2/repo/blobs/uploads/?mount=" + digest.FromString("x").String() + "&from=Bad", 400, CodeNameInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.do(tt.method, tt.path, []byte("data")).expect(t, tt.status, tt.code)
		})
	}
	// None of it broke the session.
	s.do("GET", loc, nil).expect(t, http.StatusNoContent, "")
}

func TestUploadCancel(t *testing.T) {
	s := newServer(t, nil)
	loc := s.startUpload("repo")
	s.do("PATCH", loc, []byte("partial")).expect(t, http.StatusAccepted, "")
	s.do("DELETE", loc, nil, "Content-Length", "0").expect(t, http.StatusNoContent, "")
	s.do("GET", loc, nil).expect(t, http.StatusNotFound, CodeBlobUploadUnknown)
	s.do("PATCH", loc, []byte("more")).expect(t, http.StatusNotFound, CodeBlobUploadUnknown)
}

func TestUploadSHA512(t *testing.T) {
	s := newServer(t, nil)
	content := []byte("sha512 content")
	sum := sha512.Sum512(content)
	d := digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(sum[:]))

	for _, path := range []string{"/v2/repo/blobs/uploads/", "/v2/repo/blobs/uploads/?digest-algorithm=sha512"} {
		res := s.do("POST", path, nil)
		res.expect(t, http.StatusAccepted, "")
		res = s.do("PATCH", res.header.Get("Location"), content)
		res.expect(t, http.StatusAccepted, "")
		res = s.do("PUT", withDigest(res.header.Get("Location"), d), nil)
		res.expect(t, http.StatusCreated, "")
		res.expectHeader(t, "Docker-Content-Digest", d.String())
	}
	got := s.do("GET", "/v2/repo/blobs/"+d.String(), nil)
	got.expect(t, http.StatusOK, "")
	got.expectHeader(t, "Docker-Content-Digest", d.String())
	if !bytes.Equal(got.body, content) {
		t.Fatalf("body %q", got.body)
	}
	s.do("POST", "/v2/other/blobs/uploads/?digest="+d.String(), content).expect(t, http.StatusCreated, "")
}

func TestUploadEmptyBlob(t *testing.T) {
	s := newServer(t, nil)
	d := digest.FromBytes(nil)
	loc := s.startUpload("repo")
	s.do("PUT", withDigest(loc, d), nil, "Content-Length", "0").expect(t, http.StatusCreated, "")
	res := s.do("HEAD", "/v2/repo/blobs/"+d.String(), nil)
	res.expect(t, http.StatusOK, "")
	res.expectHeader(t, "Content-Length", "0")
}

func TestUploadLocationFollowsConfig(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		hdr  []string
		want func(s *testServer, id string) string
	}{
		{"request host", Options{}, nil, func(s *testServer, id string) string {
			return s.srv.URL + "/v2/repo/blobs/uploads/" + id
		}},
		{"relative", Options{RelativeURLs: true}, nil, func(_ *testServer, id string) string {
			return "/v2/repo/blobs/uploads/" + id
		}},
		{"http.host", Options{Host: "https://reg.example.com/"}, nil, func(_ *testServer, id string) string {
			return "https://reg.example.com/v2/repo/blobs/uploads/" + id
		}},
		{"forwarded", Options{}, []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "front.example.com, inner"}, func(_ *testServer, id string) string {
			return "https://front.example.com/v2/repo/blobs/uploads/" + id
		}},
		{"prefix", Options{Prefix: "/reg/", RelativeURLs: true}, nil, func(_ *testServer, id string) string {
			return "/reg/v2/repo/blobs/uploads/" + id
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, &setup{opts: tt.opts})
			res := s.do("POST", strings.TrimSuffix(tt.opts.Prefix, "/")+"/v2/repo/blobs/uploads/", nil, tt.hdr...)
			res.expect(t, http.StatusAccepted, "")
			res.expectHeader(t, "Location", tt.want(s, res.header.Get("Docker-Upload-UUID")))
		})
	}
}

func TestUploadCrossRepositoryMount(t *testing.T) {
	s := newServer(t, nil)
	content := []byte("shared layer")
	d := s.pushBlob("source", content)

	res := s.do("POST", "/v2/target/blobs/uploads/?mount="+d.String()+"&from=source", nil)
	res.expect(t, http.StatusCreated, "")
	res.expectHeader(t, "Location", s.srv.URL+"/v2/target/blobs/"+d.String())
	res.expectHeader(t, "Docker-Content-Digest", d.String())
	s.do("GET", "/v2/target/blobs/"+d.String(), nil).expect(t, http.StatusOK, "")

	// Without from: the blob is found wherever it is.
	res = s.do("POST", "/v2/anywhere/blobs/uploads/?mount="+d.String(), nil)
	res.expect(t, http.StatusCreated, "")
	s.do("HEAD", "/v2/anywhere/blobs/"+d.String(), nil).expect(t, http.StatusOK, "")

	// A blob the source does not have starts an upload instead.
	missing := digest.FromString("not pushed")
	res = s.do("POST", "/v2/target/blobs/uploads/?mount="+missing.String()+"&from=source", nil)
	res.expect(t, http.StatusAccepted, "")
	if !strings.Contains(res.header.Get("Location"), "/v2/target/blobs/uploads/") {
		t.Fatalf("fallback Location %q is not an upload", res.header.Get("Location"))
	}
	res = s.do("POST", "/v2/target/blobs/uploads/?mount="+missing.String()+"&from=nosuchrepo", nil)
	res.expect(t, http.StatusAccepted, "")
}

func itoa(i int) string { return strconv.Itoa(i) }

// readFromUpload is an upload that only streams, for copyBody.
type readFromUpload struct {
	storage.Upload
	writeErr error
}

func (u readFromUpload) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(io.Discard, r)
	if err == nil {
		err = u.writeErr
	}
	return n, err
}

func TestCopyBodyBlamesTheClientForABrokenBody(t *testing.T) {
	broken := io.MultiReader(strings.NewReader("some"), iotest.ErrReader(io.ErrUnexpectedEOF))
	err := copyBody(readFromUpload{}, broken, -1)
	if e := errorFor(err); e.Code != CodeBlobUploadInvalid || e.HTTPStatus() != http.StatusBadRequest {
		t.Fatalf("broken body: %v, want BLOB_UPLOAD_INVALID 400", err)
	}
	err = copyBody(readFromUpload{writeErr: errors.New("disk full")}, strings.NewReader("ok"), 2)
	if e := errorFor(err); e.Code != CodeUnknown || e.HTTPStatus() != http.StatusInternalServerError {
		t.Fatalf("storage failure: %v, want 500", err)
	}
}

// partSized gives a driver a part size, as object-store drivers have.
type partSized struct{ driver.Driver }

func (partSized) PartSize() int64 { return 5 << 20 }

func TestUploadStartAdvertisesTheDriversPartSize(t *testing.T) {
	tests := []struct {
		name string
		wrap func(driver.Driver) driver.Driver
		want string
	}{
		{name: "no minimum", want: ""},
		{name: "part size", wrap: func(d driver.Driver) driver.Driver { return driver.Wrap(partSized{d}) }, want: "5242880"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, &setup{wrap: tt.wrap})
			res := s.do("POST", "/v2/repo/blobs/uploads/", nil)
			res.expect(t, http.StatusAccepted, "")
			if got := res.header.Get("OCI-Chunk-Min-Length"); got != tt.want {
				t.Errorf("OCI-Chunk-Min-Length = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUploadURLsAreSignedWithTheSecret: with http.secret set, an upload
// session URL works only with the _state it was handed out with, for the
// repository it was started in.
func TestUploadURLsAreSignedWithTheSecret(t *testing.T) {
	s := newServer(t, &setup{opts: Options{Secret: "s3cret"}, storage: storage.Options{DeleteEnabled: true}})
	res := s.postUpload("repo")
	loc := res.header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil || u.Query().Get("_state") == "" {
		t.Fatalf("Location %q carries no _state", loc)
	}
	id := res.header.Get("Docker-Upload-UUID")
	other := s.do("POST", "/v2/other/blobs/uploads/", nil)
	otherState, _ := url.Parse(other.header.Get("Location"))

	for name, path := range map[string]string{
		"no state":                 "/v2/repo/blobs/uploads/" + id,
		"forged state":             "/v2/repo/blobs/uploads/" + id + "?_state=AAAA",
		"state of another session": "/v2/repo/blobs/uploads/" + id + "?" + otherState.RawQuery,
	} {
		t.Run(name, func(t *testing.T) {
			s.do("PATCH", path, []byte("x"), "Content-Type", "application/octet-stream").expect(t, http.StatusBadRequest, CodeBlobUploadInvalid)
			s.do("GET", path, nil).expect(t, http.StatusBadRequest, CodeBlobUploadInvalid)
		})
	}
	res = s.do("PATCH", loc, []byte("hello"), "Content-Type", "application/octet-stream")
	res.expect(t, http.StatusAccepted, "")
	next := res.header.Get("Location")
	res = s.do("PUT", next+"&digest="+digest.FromString("hello").String(), nil)
	res.expect(t, http.StatusCreated, "")

	// Without a secret, URLs carry no state.
	plain := newServer(t, nil)
	if loc := plain.do("POST", "/v2/repo/blobs/uploads/", nil).header.Get("Location"); strings.Contains(loc, "_state") {
		t.Errorf("unsigned Location %q has a _state", loc)
	}
}

func (p partSized) Create(ctx context.Context, path string, b []byte) error {
	return driver.Create(ctx, p.Driver, path, b)
}
