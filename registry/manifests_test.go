package registry

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
)

func TestManifestPutThenGetAndHead(t *testing.T) {
	s := newServer(t, nil)
	payload := s.imageManifest("repo", image{layers: 2})
	d := digest.FromBytes(payload)

	res := s.do("PUT", "/v2/repo/manifests/v1", payload, "Content-Type", mtManifest)
	res.expect(t, http.StatusCreated, "")
	res.expectHeader(t, "Location", s.srv.URL+"/v2/repo/manifests/"+d.String())
	res.expectHeader(t, "Docker-Content-Digest", d.String())
	res.expectHeader(t, "Content-Length", "0")
	if res.header.Get("OCI-Subject") != "" {
		t.Fatal("OCI-Subject sent for a manifest without a subject")
	}

	for _, ref := range []string{"v1", d.String()} {
		for _, method := range []string{"GET", "HEAD"} {
			t.Run(method+" "+ref, func(t *testing.T) {
				res := s.do(method, "/v2/repo/manifests/"+ref, nil, "Accept", mtManifest)
				res.expect(t, http.StatusOK, "")
				res.expectHeader(t, "Content-Type", mtManifest)
				res.expectHeader(t, "Docker-Content-Digest", d.String())
				res.expectHeader(t, "Etag", `"`+d.String()+`"`)
				res.expectHeader(t, "Content-Length", strconv.Itoa(len(payload)))
				want := payload
				if method == "HEAD" {
					want = nil
				}
				if !bytes.Equal(res.body, want) {
					t.Fatalf("body %q, want %q", res.body, want)
				}
			})
		}
	}

	res = s.do("GET", "/v2/repo/manifests/v1", nil, "If-None-Match", `"`+d.String()+`"`)
	res.expect(t, http.StatusNotModified, "")
}

func TestManifestPutByDigestWithSubject(t *testing.T) {
	s := newServer(t, nil)
	subject, subjectPayload := s.pushImage("repo", "base", image{layers: 1})
	payload := s.imageManifest("repo", image{
		artifactType: "application/vnd.example.sbom",
		subject:      &descriptorJSON{mtManifest, subject.String(), len(subjectPayload)},
	})
	d := digest.FromBytes(payload)
	res := s.do("PUT", "/v2/repo/manifests/"+d.String(), payload, "Content-Type", mtManifest+"; charset=utf-8")
	res.expect(t, http.StatusCreated, "")
	res.expectHeader(t, "OCI-Subject", subject.String())
	res.expectHeader(t, "Docker-Content-Digest", d.String())
	// The Content-Type parameter is not part of the stored media type.
	s.do("HEAD", "/v2/repo/manifests/"+d.String(), nil).expectHeader(t, "Content-Type", mtManifest)
}

func TestManifestSHA512(t *testing.T) {
	s := newServer(t, nil)
	payload := s.imageManifest("repo", image{layers: 1})
	sum := sha512.Sum512(payload)
	d := digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(sum[:]))
	res := s.do("PUT", "/v2/repo/manifests/"+d.String(), payload, "Content-Type", mtManifest)
	res.expect(t, http.StatusCreated, "")
	res.expectHeader(t, "Docker-Content-Digest", d.String())
	res.expectHeader(t, "Location", s.srv.URL+"/v2/repo/manifests/"+d.String())
	got := s.do("GET", "/v2/repo/manifests/"+d.String(), nil)
	got.expect(t, http.StatusOK, "")
	got.expectHeader(t, "Docker-Content-Digest", d.String())
}

func TestManifestPutRefusesBadManifests(t *testing.T) {
	s := newServer(t, nil)
	good := s.imageManifest("repo", image{layers: 1})
	tooBig := append(append([]byte(`{"schemaVersion":2,"annotations":{"a":"`), bytes.Repeat([]byte("a"), maxManifestSize)...), `"}}`...)
	missingLayer := strings.Replace(string(good), `"layers":[`, `"layers":[{"mediaType":"`+mtLayer+`","digest":"`+digest.FromString("absent").String()+`","size":6},`, 1)
	tests := []struct {
		name    string
		ref     string
		payload []byte
		status  int
		code    Code
	}{
		{"digest mismatch", digest.FromString("other").String(), good, 400, CodeDigestInvalid},
		{"malformed digest", "sha256:baddigeststring", good, 400, CodeDigestInvalid},
		{"trailing bytes change the digest", digest.FromBytes(good).String(), append(bytes.Clone(good), "  "...), 400, CodeDigestInvalid},
		{"invalid tag", "-tag", good, 400, CodeTagInvalid},
		{"too large", "big", tooBig, http.StatusRequestEntityTooLarge, CodeManifestInvalid},
		{"not json", "junk", []byte("not a manifest"), 400, CodeManifestInvalid},
		{"unknown layer", "sparse", []byte(missingLayer), 404, CodeManifestBlobUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.do("PUT", "/v2/repo/manifests/"+tt.ref, tt.payload, "Content-Type", mtManifest).expect(t, tt.status, tt.code)
		})
	}
}

func TestManifestGetErrors(t *testing.T) {
	s := newServer(t, nil)
	s.pushImage("repo", "v1", image{})
	tests := []struct {
		name, ref string
		status    int
		code      Code
	}{
		{"unknown tag", "nosuchtag", 404, CodeManifestUnknown},
		{"unknown digest", digest.FromString("x").String(), 404, CodeManifestUnknown},
		{"malformed digest", "sha256:baddigeststring", 400, CodeDigestInvalid},
		{"invalid tag", ".hidden", 400, CodeTagInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.do("GET", "/v2/repo/manifests/"+tt.ref, nil).expect(t, tt.status, tt.code)
		})
	}
	s.do("GET", "/v2/nosuchrepo/manifests/v1", nil).expect(t, http.StatusNotFound, "")
}

func TestManifestDelete(t *testing.T) {
	t.Run("tag", func(t *testing.T) {
		s := newServer(t, nil)
		d, _ := s.pushImage("repo", "v1", image{})
		s.do("DELETE", "/v2/repo/manifests/v1", nil).expect(t, http.StatusAccepted, "")
		s.do("HEAD", "/v2/repo/manifests/v1", nil).expect(t, http.StatusNotFound, "")
		// Deleting the tag keeps the manifest.
		s.do("HEAD", "/v2/repo/manifests/"+d.String(), nil).expect(t, http.StatusOK, "")
	})
	t.Run("digest", func(t *testing.T) {
		s := newServer(t, nil)
		d, _ := s.pushImage("repo", "v1", image{})
		s.do("DELETE", "/v2/repo/manifests/"+d.String(), nil).expect(t, http.StatusAccepted, "")
		s.do("HEAD", "/v2/repo/manifests/"+d.String(), nil).expect(t, http.StatusNotFound, "")
		s.do("HEAD", "/v2/repo/manifests/v1", nil).expect(t, http.StatusNotFound, "")
	})
	t.Run("disabled", func(t *testing.T) {
		s := newServer(t, &setup{storage: storage.Options{}})
		d, _ := s.pushImage("repo", "v1", image{})
		s.do("DELETE", "/v2/repo/manifests/v1", nil).expect(t, http.StatusMethodNotAllowed, CodeUnsupported)
		s.do("DELETE", "/v2/repo/manifests/"+d.String(), nil).expect(t, http.StatusMethodNotAllowed, CodeUnsupported)
		s.do("HEAD", "/v2/repo/manifests/v1", nil).expect(t, http.StatusOK, "")
	})
	t.Run("unknown", func(t *testing.T) {
		s := newServer(t, nil)
		s.pushImage("repo", "v1", image{})
		s.do("DELETE", "/v2/repo/manifests/"+digest.FromString("x").String(), nil).expect(t, http.StatusNotFound, CodeManifestUnknown)
		s.do("DELETE", "/v2/repo/manifests/nosuchtag", nil).expect(t, http.StatusNotFound, "")
	})
}

func TestManifestPutWithTagParameters(t *testing.T) {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run(string(alg), func(t *testing.T) {
			s := newServer(t, nil)
			payload := s.imageManifest("repo", image{})
			d := alg.FromBytes(payload)
			res := s.do("PUT", "/v2/repo/manifests/"+d.String()+"?tag=1.2.3&tag=1.2&tag=latest&tag=1.2", payload, "Content-Type", mtManifest)
			res.expect(t, http.StatusCreated, "")
			res.expectHeader(t, "OCI-Tag", "1.2.3, 1.2, latest")
			for _, tag := range []string{"1.2.3", "1.2", "latest"} {
				got := s.do("HEAD", "/v2/repo/manifests/"+tag, nil)
				got.expect(t, http.StatusOK, "")
				got.expectHeader(t, "Docker-Content-Digest", d.String())
			}
			s.do("PUT", "/v2/repo/manifests/"+d.String()+"?tag=bad/tag", payload, "Content-Type", mtManifest).expect(t, 400, CodeTagInvalid)
		})
	}
}
