package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

var specDigest = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)

// FuzzParseContentRange checks the Content-Range of an upload chunk: an
// accepted range is within 0..MaxInt64 with its start at or before its
// end, its length (end-start+1) is a positive int64, it reads back the
// same when written in the spec's form, and the spec's form of any valid
// range is accepted.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{
		"0-0", "0-99", "100-199", "bytes 0-99/100", "bytes=0-99", "bytes 0-99/*", " 5-6 ", "5-4", "-1-5", "1--5",
		"", "-", "0-", "-0", "9223372036854775807-9223372036854775807", "0-9223372036854775807",
		"9223372036854775808-9223372036854775809", "+1-+2", "0x10-0x20", "1-2-3", "bytesbytes 1-2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, ok := parseContentRange(s)
		if !ok {
			if start != 0 || end != 0 {
				t.Fatalf("refused %q but returned %d-%d", s, start, end)
			}
			return
		}
		if start < 0 || end < start {
			t.Fatalf("%q: range %d-%d", s, start, end)
		}
		if length := end - start + 1; length <= 0 {
			t.Fatalf("%q: range %d-%d has length %d: the chunk's size overflows", s, start, end, length)
		}
		for _, form := range []string{"%d-%d", "bytes %d-%d/*", "bytes=%d-%d"} {
			a, b, ok := parseContentRange(fmt.Sprintf(form, start, end))
			if !ok || a != start || b != end {
				t.Fatalf("%q read as %d-%d, but "+form+" reads as %d-%d (%v)", s, start, end, start, end, a, b, ok)
			}
		}
	})
}

// FuzzParseDigest checks the API's digest parsing against the spec's
// canonical forms of the two algorithms Berth hashes with: one is accepted
// exactly when it is one of them, as it was written, and anything else is
// refused with DIGEST_INVALID (400), never a server error.
func FuzzParseDigest(f *testing.F) {
	hex64 := strings.Repeat("0f", 32)
	for _, s := range []string{
		"sha256:" + hex64, "sha512:" + hex64 + hex64, "sha256:" + strings.ToUpper(hex64), "sha384:" + hex64 + hex64[:32],
		"sha256:" + hex64[:62], "", ":", "sha256:", "sha256:" + hex64 + "\n", "sha256:../" + hex64[3:],
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDigest(s)
		if want := specDigest.MatchString(s); (err == nil) != want {
			t.Fatalf("parseDigest(%q) = %v, want accepted %v", s, err, want)
		}
		if err == nil {
			if string(d) != s {
				t.Fatalf("parseDigest(%q) = %q", s, d)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeDigestInvalid || e.HTTPStatus() != http.StatusBadRequest {
			t.Fatalf("parseDigest(%q) = %v, want DIGEST_INVALID", s, err)
		}
	})
}

// FuzzParsePath checks that the route a path is read as names exactly
// that path: the repository and reference put back in the route's shape
// give the path again, and a reference is one path component.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/v2/", "/v2", "/v2/_catalog", "/v2/a/b/manifests/latest", "/v2/a/blobs/sha256:x", "/v2/a/blobs/uploads/",
		"/v2/a/blobs/uploads", "/v2/a/blobs/uploads/id", "/v2/a/tags/list", "/v2/a/referrers/sha256:x",
		"/v2/a/blobs/uploads/blobs/x", "/v2//manifests/x", "/v2/manifests/x", "/v2/a/manifests/", "/v2/blobs/uploads/x",
		"/v2/a/../b/manifests/x", "/v3/a/manifests/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		tg, ok := parsePath(p)
		if !ok {
			return
		}
		if strings.Contains(tg.ref, "/") {
			t.Fatalf("%q: reference %q spans components", p, tg.ref)
		}
		var forms []string
		switch tg.kind {
		case kindBase:
			forms = []string{"/v2/", "/v2"}
		case kindCatalog:
			forms = []string{"/v2/_catalog"}
		case kindTags:
			forms = []string{"/v2/" + tg.name + "/tags/list"}
		case kindManifest:
			forms = []string{manifestPath(tg.name, tg.ref)}
		case kindBlob:
			forms = []string{blobPath(tg.name, tg.ref)}
		case kindUploads:
			forms = []string{"/v2/" + tg.name + "/blobs/uploads/", "/v2/" + tg.name + "/blobs/uploads"}
		case kindUpload:
			forms = []string{uploadPath(tg.name, tg.ref)}
		case kindReferrers:
			forms = []string{"/v2/" + tg.name + "/referrers/" + tg.ref}
		default:
			t.Fatalf("%q: kind %d", p, tg.kind)
		}
		for _, form := range forms {
			if form == p {
				return
			}
		}
		t.Fatalf("%q read as %+v, which is %q", p, tg, forms[0])
	})
}

// FuzzBlobRange sends a blob GET with any Range header. The answer is
// the whole blob (200), the parts asked for, each within the blob and
// holding its bytes (206, one range or multipart/byteranges), or
// RANGE_INVALID with the blob's size (416); never a server error.
func FuzzBlobRange(f *testing.F) {
	for _, s := range []string{
		"", "bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0", "bytes=10-5", "bytes=999-", "bytes=0-99999",
		"bytes=0-1,3-4", "bytes=0-1, 2-3,-1", "bytes=", "bytes=a-b", "items=0-1", "bytes=9223372036854775807-",
		"bytes=-9223372036854775808", "bytes=0-0,0-0,0-0,0-0", "bytes= 1-2",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil {
		f.Fatal(err)
	}
	h := New(storage.New(d, storage.Options{}, nil), Options{}, nil)
	blobs := [][]byte{[]byte("0123456789abcdefghijklmnopqrstuvwxyz"), {}}
	for _, blob := range blobs {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/app/blobs/uploads/?digest="+digest.FromBytes(blob).String(), bytes.NewReader(blob)))
		if rec.Code != http.StatusCreated {
			f.Fatalf("push: %d %s", rec.Code, rec.Body)
		}
	}
	f.Fuzz(func(t *testing.T, rng string, empty bool) {
		blob := blobs[0]
		if empty {
			blob = blobs[1]
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v2/app/blobs/"+digest.FromBytes(blob).String(), nil)
		req.Header.Set("Range", rng)
		h.ServeHTTP(rec, req)
		checkRangeAnswer(t, rng, rec.Result(), blob)
	})
}

// checkRangeAnswer checks a blob GET's answer to Range rng for blob.
func checkRangeAnswer(t *testing.T, rng string, res *http.Response, blob []byte) {
	t.Helper()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(blob))
	switch res.StatusCode {
	case http.StatusOK:
		if !bytes.Equal(body, blob) {
			t.Fatalf("Range %q: 200 with %q", rng, body)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if got := res.Header.Get("Content-Range"); got != "bytes */"+strconv.FormatInt(size, 10) {
			t.Fatalf("Range %q: 416 with Content-Range %q", rng, got)
		}
		var eb errorBody
		if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) != 1 || eb.Errors[0].Code != CodeRangeInvalid {
			t.Fatalf("Range %q: 416 with body %q", rng, body)
		}
	case http.StatusPartialContent:
		mt, params, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
		if mt != "multipart/byteranges" {
			checkPart(t, rng, res.Header.Get("Content-Range"), body, blob)
			return
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		parts := 0
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Range %q: multipart body: %v", rng, err)
			}
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatal(err)
			}
			checkPart(t, rng, p.Header.Get("Content-Range"), b, blob)
			parts++
		}
		if parts == 0 {
			t.Fatalf("Range %q: 206 multipart with no part", rng)
		}
	default:
		t.Fatalf("Range %q: status %d: %s", rng, res.StatusCode, body)
	}
}

// checkPart checks that one part of a 206 answer lies within blob and
// holds its bytes.
func checkPart(t *testing.T, rng, contentRange string, body, blob []byte) {
	t.Helper()
	var first, last, total int64
	if _, err := fmt.Sscanf(contentRange, "bytes %d-%d/%d", &first, &last, &total); err != nil {
		t.Fatalf("Range %q: Content-Range %q: %v", rng, contentRange, err)
	}
	if total != int64(len(blob)) || first < 0 || last < first || last >= total || last-first == math.MaxInt64 {
		t.Fatalf("Range %q: Content-Range %q outside the blob of %d bytes", rng, contentRange, len(blob))
	}
	if !bytes.Equal(body, blob[first:last+1]) {
		t.Fatalf("Range %q: part %q holds %q", rng, contentRange, body)
	}
}
