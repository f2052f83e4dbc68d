package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

func TestBlobGetAndHeadHeaders(t *testing.T) {
	s := newServer(t, nil)
	content := bytes.Repeat([]byte("blob"), 512)
	d := s.pushBlob("repo", content)
	for _, method := range []string{"GET", "HEAD"} {
		t.Run(method, func(t *testing.T) {
			res := s.do(method, "/v2/repo/blobs/"+d.String(), nil)
			res.expect(t, http.StatusOK, "")
			res.expectHeader(t, "Docker-Content-Digest", d.String())
			res.expectHeader(t, "Etag", `"`+d.String()+`"`)
			res.expectHeader(t, "Content-Length", strconv.Itoa(len(content)))
			res.expectHeader(t, "Content-Type", "application/octet-stream")
			res.expectHeader(t, "Accept-Ranges", "bytes")
			want := content
			if method == "HEAD" {
				want = nil
			}
			if !bytes.Equal(res.body, want) {
				t.Fatalf("body of %d bytes, want %d", len(res.body), len(want))
			}
		})
	}
}

func TestBlobRangeRequests(t *testing.T) {
	s := newServer(t, nil)
	content := make([]byte, 2048)
	for i := range content {
		content[i] = byte(i)
	}
	d := s.pushBlob("repo", content)
	tests := []struct {
		rng          string
		status       int
		contentRange string
		body         []byte
	}{
		{"bytes=500-1499", 206, "bytes 500-1499/2048", content[500:1500]},
		{"bytes=500-", 206, "bytes 500-2047/2048", content[500:]},
		{"bytes=-500", 206, "bytes 1548-2047/2048", content[1548:]},
		{"bytes=2000-5000", 206, "bytes 2000-2047/2048", content[2000:]},
		{"bytes=500-0", 416, "", nil},
		{"bytes=5000-10000", 416, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			res := s.do("GET", "/v2/repo/blobs/"+d.String(), nil, "Range", tt.rng)
			res.expect(t, tt.status, "")
			if tt.status != 206 {
				return
			}
			res.expectHeader(t, "Content-Range", tt.contentRange)
			res.expectHeader(t, "Content-Length", strconv.Itoa(len(tt.body)))
			if !bytes.Equal(res.body, tt.body) {
				t.Fatalf("body differs")
			}
		})
	}
}

func TestBlobErrors(t *testing.T) {
	s := newServer(t, nil)
	d := s.pushBlob("repo", []byte("present"))
	missing := digest.FromString("missing")
	tests := []struct {
		name, method, path string
		status             int
		code               Code
	}{
		{"unknown blob", "GET", "/v2/repo/blobs/" + missing.String(), 404, CodeBlobUnknown},
		{"blob of another repository", "GET", "/v2/other/blobs/" + d.String(), 404, CodeBlobUnknown},
		{"malformed digest", "GET", "/v2/repo/blobs/sha256:xyz", 400, CodeDigestInvalid},
		{"head unknown blob", "HEAD", "/v2/repo/blobs/" + missing.String(), 404, ""},
		{"delete unknown blob", "DELETE", "/v2/repo/blobs/" + missing.String(), 404, CodeBlobUnknown},
		{"invalid name", "GET", "/v2/Repo/blobs/" + d.String(), 400, CodeNameInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.do(tt.method, tt.path, nil).expect(t, tt.status, tt.code)
		})
	}
}

func TestBlobDelete(t *testing.T) {
	tests := []struct {
		name    string
		enabled bool
		status  int
		code    Code
		after   int
	}{
		{"enabled", true, http.StatusAccepted, "", http.StatusNotFound},
		{"disabled", false, http.StatusMethodNotAllowed, CodeUnsupported, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, &setup{storage: storage.Options{DeleteEnabled: tt.enabled}})
			d := s.pushBlob("repo", []byte("to delete"))
			s.do("DELETE", "/v2/repo/blobs/"+d.String(), nil).expect(t, tt.status, tt.code)
			s.do("HEAD", "/v2/repo/blobs/"+d.String(), nil).expect(t, tt.after, "")
		})
	}
}

// redirector adds a Redirector to a driver, as an object store's has.
type redirector struct {
	driver.Driver
	url string
}

func (r redirector) RedirectURL(_ *http.Request, path string) (string, error) {
	if r.url == "" {
		return "", nil
	}
	return r.url + path, nil
}

func TestBlobRedirect(t *testing.T) {
	const content = "redirected"
	tests := []struct {
		name     string
		url      string
		disabled bool
		rng      string // the request's Range header
		status   int
		body     string // what a request Berth serves itself gets
		code     Code   // the error a 416 carries
	}{
		{name: "redirect", url: "https://bucket.example.com", status: http.StatusTemporaryRedirect},
		{name: "driver declines", status: http.StatusOK, body: content},
		{name: "redirects disabled", url: "https://bucket.example.com", disabled: true, status: http.StatusOK, body: content},
		{name: "range redirected", url: "https://bucket.example.com", rng: "bytes=2-5", status: http.StatusTemporaryRedirect},
		{name: "open range redirected", url: "https://bucket.example.com", rng: "bytes=2-", status: http.StatusTemporaryRedirect},
		// Forms an object store may not honour are served here.
		{name: "suffix range served", url: "https://bucket.example.com", rng: "bytes=-3", status: http.StatusPartialContent, body: "ted"},
		{name: "two ranges served", url: "https://bucket.example.com", rng: "bytes=0-1,3-4", status: http.StatusPartialContent},
		{name: "bad range served", url: "https://bucket.example.com", rng: "bytes=x-1", status: http.StatusRequestedRangeNotSatisfiable, code: CodeRangeInvalid},
		{name: "range past the end", rng: "bytes=100-", status: http.StatusRequestedRangeNotSatisfiable, code: CodeRangeInvalid},
		{name: "reversed range served", url: "https://bucket.example.com", rng: "bytes=5-2", status: http.StatusRequestedRangeNotSatisfiable, code: CodeRangeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, &setup{
				opts: Options{RedirectDisabled: tt.disabled},
				wrap: func(d driver.Driver) driver.Driver { return redirector{Driver: d, url: tt.url} },
			})
			d := s.pushBlob("repo", []byte(content))
			var hdr []string
			if tt.rng != "" {
				hdr = []string{"Range", tt.rng}
			}
			res := s.do("GET", "/v2/repo/blobs/"+d.String(), nil, hdr...)
			res.expect(t, tt.status, tt.code)
			if tt.code != "" {
				// The size, for a client to ask again; no blob headers on
				// an error body.
				res.expectHeader(t, "Content-Range", fmt.Sprintf("bytes */%d", len(content)))
				res.expectHeader(t, "Docker-Content-Digest", "")
				return
			}
			res.expectHeader(t, "Docker-Content-Digest", d.String())
			if tt.status == http.StatusTemporaryRedirect {
				want := tt.url + "/docker/registry/v2/blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded() + "/data"
				res.expectHeader(t, "Location", want)
			}
			if tt.body != "" && string(res.body) != tt.body {
				t.Errorf("body %q, want %q", res.body, tt.body)
			}
			// An unknown blob is never redirected.
			s.do("GET", "/v2/repo/blobs/"+digest.FromString("nope").String(), nil).expect(t, http.StatusNotFound, CodeBlobUnknown)
		})
	}
}

func (r redirector) Create(ctx context.Context, path string, b []byte) error {
	return driver.Create(ctx, r.Driver, path, b)
}

// brokenReader is a backend whose reads fail while everything else works:
// it was reachable for the stat and went down before the bytes.
type brokenReader struct {
	driver.Driver
	err error
}

func (b brokenReader) Reader(context.Context, string, int64) (io.ReadCloser, error) {
	return nil, b.err
}

// A blob GET reaches the backend for the bytes before it sends a status:
// a backend that fails there gives a 503, never a 200 cut short.
func TestBlobGetWithBrokenBackendIs503NotAShort200(t *testing.T) {
	backendErrs := []struct {
		name string
		err  error
		code Code
	}{
		{"timeout", &driver.PathError{Op: "reader", Path: "/x", Driver: "s3", Err: fmt.Errorf("%w: %w", driver.ErrTimeout, context.DeadlineExceeded)}, CodeUnavailable},
		{"connection refused", &driver.PathError{Op: "reader", Path: "/x", Driver: "s3", Err: errors.New("connection refused")}, CodeUnknown},
	}
	ranges := []string{"", "bytes=0-", "bytes=3-", "bytes=2-5", "bytes=-3"}
	for _, be := range backendErrs {
		for _, rng := range ranges {
			t.Run(be.name+"/"+rng, func(t *testing.T) {
				s := newServer(t, &setup{
					storage: storage.Options{DeleteEnabled: true},
					wrap:    func(d driver.Driver) driver.Driver { return brokenReader{Driver: d, err: be.err} },
				})
				d := s.pushBlob("repo", []byte("some content"))
				var hdr []string
				if rng != "" {
					hdr = []string{"Range", rng}
				}
				res := s.do("GET", "/v2/repo/blobs/"+d.String(), nil, hdr...)
				res.expect(t, http.StatusServiceUnavailable, be.code)
				res.expectHeader(t, "Docker-Content-Digest", "")
			})
		}
	}
}

func (b brokenReader) Create(ctx context.Context, path string, c []byte) error {
	return driver.Create(ctx, b.Driver, path, c)
}
