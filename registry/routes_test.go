package registry

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
)

func TestParsePathReadsFromTheEnd(t *testing.T) {
	tests := []struct {
		path string
		want target
		ok   bool
	}{
		{"/v2/", target{kind: kindBase}, true},
		{"/v2", target{kind: kindBase}, true},
		{"/v2/_catalog", target{kind: kindCatalog}, true},
		{"/v2/a/b/c/tags/list", target{kind: kindTags, name: "a/b/c"}, true},
		{"/v2/lib/x/manifests/latest", target{kind: kindManifest, name: "lib/x", ref: "latest"}, true},
		{"/v2/x/manifests/sha256:abc", target{kind: kindManifest, name: "x", ref: "sha256:abc"}, true},
		{"/v2/x/blobs/sha256:abc", target{kind: kindBlob, name: "x", ref: "sha256:abc"}, true},
		{"/v2/x/blobs/uploads/", target{kind: kindUploads, name: "x"}, true},
		{"/v2/x/blobs/uploads", target{kind: kindUploads, name: "x"}, true},
		{"/v2/x/blobs/uploads/id-1", target{kind: kindUpload, name: "x", ref: "id-1"}, true},
		// Repository names may end in the words of the API.
		{"/v2/a/blobs/blobs/uploads/", target{kind: kindUploads, name: "a/blobs"}, true},
		{"/v2/a/manifests/manifests/v1", target{kind: kindManifest, name: "a/manifests", ref: "v1"}, true},
		{"/v2/a/tags/tags/list", target{kind: kindTags, name: "a/tags"}, true},
		{"/v2/x/referrers/sha256:abc", target{kind: kindReferrers, name: "x", ref: "sha256:abc"}, true},
		{"/v2/x/manifests/", target{}, false},
		{"/v2/x/tags/other", target{}, false},
		{"/v2/x/unknown/y", target{}, false},
		{"/v2/x", target{}, false},
		{"/v1/x/manifests/latest", target{}, false},
		{"/", target{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := parsePath(tt.path)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Fatalf("parsePath(%q) = %+v, %v; want %+v, %v", tt.path, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestEveryRouteHasAHandler(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range routes {
		key := fmt.Sprint(rt.method, rt.kind)
		if seen[key] {
			t.Errorf("route %s %s listed twice", rt.method, rt.pattern)
		}
		seen[key] = true
		if rt.handle == nil {
			t.Errorf("route %s %s has no handler", rt.method, rt.pattern)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in         string
		start, end int64
		ok         bool
	}{
		{"0-1023", 0, 1023, true},
		{"1024-2047", 1024, 2047, true},
		{"bytes 0-9/10", 0, 9, true},
		{"bytes=5-9", 5, 9, true},
		{"0-0", 0, 0, true},
		{"9-5", 0, 0, false},
		{"-5", 0, 0, false},
		{"5-", 0, 0, false},
		{"a-b", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		start, end, ok := parseContentRange(tt.in)
		if ok != tt.ok || (ok && (start != tt.start || end != tt.end)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, %v", tt.in, start, end, ok, tt.start, tt.end, tt.ok)
		}
	}
}

func TestNameAndTagGrammar(t *testing.T) {
	names := map[string]bool{
		"a":                      true,
		"library/ubuntu":         true,
		"a.b_c__d--e/f":          true,
		"conformance/repo1":      true,
		"A":                      false,
		"a//b":                   false,
		"a/":                     false,
		"-a":                     false,
		"a___b":                  false,
		"a/../b":                 false,
		"":                       false,
		strings.Repeat("a", 255): true,
		strings.Repeat("a", 256): false,
	}
	for n, want := range names {
		if got := validName(n); got != want {
			t.Errorf("validName(%q) = %v, want %v", n, got, want)
		}
	}
	tags := map[string]bool{
		"latest":                 true,
		"v1.0.0-rc_1":            true,
		"_x":                     true,
		".x":                     false,
		"-x":                     false,
		"a/b":                    false,
		strings.Repeat("t", 128): true,
		strings.Repeat("t", 129): false,
	}
	for tag, want := range tags {
		if got := validTag(tag); got != want {
			t.Errorf("validTag(%q) = %v, want %v", tag, got, want)
		}
	}
}

func TestParseDigestAcceptsOnlySHA256AndSHA512(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"sha256:" + strings.Repeat("a", 64), true},
		{"sha512:" + strings.Repeat("a", 128), true},
		{"sha384:" + strings.Repeat("a", 96), false},
		{"sha256:" + strings.Repeat("A", 64), false},
		{"sha256:baddigeststring", false},
		{"md5:abc", false},
		{"", false},
	}
	for _, tt := range tests {
		_, err := parseDigest(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("parseDigest(%q) error %v, want ok %v", tt.in, err, tt.ok)
		}
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Code != CodeDigestInvalid) {
			t.Errorf("parseDigest(%q) error %v, want DIGEST_INVALID", tt.in, err)
		}
	}
}

func TestStorageErrorsMapToAPIErrors(t *testing.T) {
	tests := []struct {
		err    error
		code   Code
		status int
	}{
		{storage.ErrBlobUnknown, CodeBlobUnknown, 404},
		{storage.ErrManifestUnknown, CodeManifestUnknown, 404},
		{&storage.Error{Err: storage.ErrManifestBlobUnknown, Detail: "layer"}, CodeManifestBlobUnknown, 404},
		{fmt.Errorf("put: %w", storage.ErrManifestInvalid), CodeManifestInvalid, 400},
		{storage.ErrUploadUnknown, CodeBlobUploadUnknown, 404},
		{storage.ErrUploadInvalid, CodeBlobUploadInvalid, 400},
		{storage.ErrDigestInvalid, CodeDigestInvalid, 400},
		{storage.ErrUnsupportedDigest, CodeDigestInvalid, 400},
		{storage.ErrSizeInvalid, CodeSizeInvalid, 400},
		{storage.ErrRangeInvalid, CodeRangeInvalid, 416},
		{storage.ErrNameUnknown, CodeNameUnknown, 404},
		{storage.ErrDeleteDisabled, CodeUnsupported, 405},
		{storage.ErrCollecting, CodeUnavailable, 503},
		{errors.Join(&storage.Error{Err: storage.ErrManifestBlobUnknown}, &storage.Error{Err: storage.ErrCollecting}), CodeUnavailable, 503},
		{errors.New("disk on fire"), CodeUnknown, 500},
		{apiErr(CodeDenied, ""), CodeDenied, 403},
		{apiErr(CodeUnauthorized, ""), CodeUnauthorized, 401},
		{apiErr(CodeTooManyRequests, ""), CodeTooManyRequests, http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		e := errorFor(tt.err)
		if e.Code != tt.code || e.HTTPStatus() != tt.status {
			t.Errorf("errorFor(%v) = %s %d, want %s %d", tt.err, e.Code, e.HTTPStatus(), tt.code, tt.status)
		}
	}
}

func TestStorageErrorDetailReachesTheClient(t *testing.T) {
	e := errorFor(&storage.Error{Err: storage.ErrManifestBlobUnknown, Detail: "layer 2", Digest: digest.Digest("sha256:" + strings.Repeat("b", 64))})
	if !strings.Contains(e.message(), "layer 2") {
		t.Errorf("message %q lacks the storage detail", e.message())
	}
	if d, ok := e.Detail.(map[string]string); !ok || d["digest"] == "" {
		t.Errorf("detail %v lacks the digest", e.Detail)
	}
}
