package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// The grammars as the distribution spec writes them, kept apart from the
// code's own (and its fast paths) so each fuzz target checks one against
// the other.
var (
	specName   = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|[-]+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|[-]+)[a-z0-9]+)*)*$`)
	specTag    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	specDigest = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)
)

// FuzzRepositoryName checks that a name is accepted exactly when the spec's
// grammar and Distribution's length allow it, and that an accepted name is
// a clean relative path no component of which can reach _layers,
// _manifests or _uploads, or climb out of the repositories directory.
func FuzzRepositoryName(f *testing.F) {
	for _, s := range []string{
		"library/alpine", "a", "a_b", "a__b", "a___b", "a--b/c.d", "a..b", "a/", "/a", "a//b",
		"_layers", "a/_manifests", "a/../b", "../a", ".", "A", "a.b-c_d/e",
		strings.Repeat("a", 255), strings.Repeat("a", 256), "a/b/c/d/e/f", "a\x00b", "é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := ValidRepositoryName(name)
		want := len(name) <= 255 && specName.MatchString(name)
		if got != want {
			t.Fatalf("ValidRepositoryName(%q) = %v, the spec says %v", name, got, want)
		}
		if !got {
			return
		}
		if path.Clean(name) != name || path.IsAbs(name) {
			t.Fatalf("accepted name %q is not a clean relative path", name)
		}
		for c := range strings.SplitSeq(name, "/") {
			if c == "" || c[0] == '_' || c[0] == '.' {
				t.Fatalf("accepted name %q has component %q", name, c)
			}
		}
	})
}

// FuzzTag checks the tag grammar, and that a tag, which becomes a
// directory name, is one safe path component.
func FuzzTag(f *testing.F) {
	for _, s := range []string{"latest", "v1.2.3", "_x", ".x", "-x", "..", ".", "a/b", "A_b-c.d", strings.Repeat("t", 128), strings.Repeat("t", 129), "sha256:abc", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		got := ValidTag(tag)
		if want := specTag.MatchString(tag); got != want {
			t.Fatalf("ValidTag(%q) = %v, the spec says %v", tag, got, want)
		}
		if got && (path.Base(tag) != tag || tag == "." || tag == ".." || strings.ContainsAny(tag, "/\x00")) {
			t.Fatalf("accepted tag %q is not one path component", tag)
		}
	})
}

// FuzzDigest checks that a digest is accepted exactly in the canonical
// forms of the two algorithms Berth hashes with, whether through the fast
// path or go-digest's, and that anything else is refused with the error
// the API turns into DIGEST_INVALID or an unsupported algorithm.
func FuzzDigest(f *testing.F) {
	hex64 := strings.Repeat("ab", 32)
	for _, s := range []string{
		"sha256:" + hex64, "sha512:" + hex64 + hex64, "sha256:" + strings.ToUpper(hex64), "sha256:" + hex64[:63],
		"sha384:" + hex64 + hex64[:32], "md5:abc", ":" + hex64, "sha256", "", "sha256:" + hex64 + "/../x",
		"sha256+b64:" + hex64, "SHA256:" + hex64,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := validDigest(digest.Digest(s))
		if want := specDigest.MatchString(s); (err == nil) != want {
			t.Fatalf("validDigest(%q) = %v, want accepted %v", s, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrDigestInvalid) && !errors.Is(err, ErrUnsupportedDigest) {
				t.Fatalf("validDigest(%q) = %v, neither invalid nor unsupported", s, err)
			}
			return
		}
		if digest.Digest(s).Validate() != nil {
			t.Fatalf("accepted %q, which go-digest refuses", s)
		}
	})
}

// FuzzParseManifest pushes any payload under any Content-Type. An accepted
// manifest must be one of the four formats Berth stores, with only valid
// digests in it, and must read back from storage (describe, which derives
// the type from the payload alone) as the very type it was accepted as:
// otherwise a client would be served a manifest under another type than
// the one it pushed.
func FuzzParseManifest(f *testing.F) {
	d := "sha256:" + strings.Repeat("ab", 32)
	desc := `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + d + `","size":1}`
	for _, seed := range []struct{ ct, payload string }{
		{mediaTypeOCIManifest, `{"schemaVersion":2,"mediaType":"` + mediaTypeOCIManifest + `","config":` + desc + `,"layers":[` + desc + `]}`},
		{mediaTypeOCIManifest, `{"schemaVersion":2,"config":` + desc + `,"layers":[]}`},
		{mediaTypeOCIIndex, `{"schemaVersion":2,"manifests":[` + desc + `]}`},
		{"", `{"schemaVersion":2,"manifests":[]}`},
		{mediaTypeDockerManifest, `{"schemaVersion":2,"mediaType":"` + mediaTypeDockerManifest + `","config":` + desc + `,"layers":[]}`},
		{mediaTypeDockerList, `{"schemaVersion":2,"mediaType":"` + mediaTypeDockerList + `","manifests":[]}`},
		{"application/json; charset=utf-8", `{"schemaVersion":2,"config":` + desc + `,"subject":` + desc + `}`},
		{mediaTypeOCIManifest, `{"schemaVersion":2,"config":` + desc + `,"manifests":null}`},
		{mediaTypeOCIIndex, `{"schemaVersion":2,"MediaType":"` + mediaTypeOCIIndex + `","Manifests":[]}`},
		{mediaTypeSchema1Signed, `{"schemaVersion":1,"signatures":[{}]}`},
		{mediaTypeOCIManifest, `{"schemaVersion":2,"config":{"digest":"sha256:../../x"}}`},
		{"", `{"schemaVersion":2.0,"config":{}}`},
		{"", `[]`},
		{"", `null`},
	} {
		f.Add(seed.ct, []byte(seed.payload))
	}
	f.Fuzz(func(t *testing.T, ct string, payload []byte) {
		doc, mt, err := parseManifest(ct, payload)
		if err != nil {
			if !errors.Is(err, ErrManifestInvalid) {
				t.Fatalf("refusal %v is not MANIFEST_INVALID", err)
			}
			return
		}
		if !slices.Contains([]string{mediaTypeOCIManifest, mediaTypeOCIIndex, mediaTypeDockerManifest, mediaTypeDockerList}, mt) {
			t.Fatalf("accepted as %q", mt)
		}
		if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
			t.Fatalf("accepted schemaVersion %v", doc.SchemaVersion)
		}
		if !json.Valid(payload) || len(payload) > maxManifestSize {
			t.Fatalf("accepted a payload that is not JSON or too large")
		}
		for _, r := range doc.references() {
			if validDigest(r.Digest) != nil {
				t.Fatalf("accepted reference digest %q", r.Digest)
			}
		}
		info, err := describe(payload)
		if err != nil {
			t.Fatalf("accepted as %s, unreadable when stored: %v", mt, err)
		}
		if info.mediaType != mt {
			t.Fatalf("accepted as %s, served as %s: %s", mt, info.mediaType, bytes.TrimSpace(payload))
		}
	})
}
