package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMiniRegistryServesWhatWasPushed: a blob pushed as docker pushes it
// (POST, PATCH, PUT ?digest=) and a manifest come back as they went in,
// by tag and by digest; a PUT whose digest is not its bytes' is refused.
// With the layout, the blob and its link are where Distribution keeps
// them.
func TestMiniRegistryServesWhatWasPushed(t *testing.T) {
	for _, layout := range []bool{false, true} {
		t.Run(fmt.Sprintf("layout=%v", layout), func(t *testing.T) { testMiniRegistry(t, layout) })
	}
}

func testMiniRegistry(t *testing.T, layout bool) {
	dir := t.TempDir()
	m := newMiniRegistry(dir)
	m.layout = layout
	srv := httptest.NewServer(http.HandlerFunc(m.serve))
	defer srv.Close()
	do := func(method, url, ctype string, body []byte) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	push := func(blob []byte, digest string) int {
		t.Helper()
		resp := do(http.MethodPost, srv.URL+"/v2/a/b/blobs/uploads/", "", nil)
		resp.Body.Close()
		loc := srv.URL + resp.Header.Get("Location")
		resp = do(http.MethodPatch, loc, "application/octet-stream", blob[:len(blob)/2])
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != fmt.Sprintf("0-%d", len(blob)/2-1) {
			t.Fatalf("PATCH: %s, Range %q", resp.Status, resp.Header.Get("Range"))
		}
		resp = do(http.MethodPut, loc+"?digest="+digest, "application/octet-stream", blob[len(blob)/2:])
		resp.Body.Close()
		return resp.StatusCode
	}
	blob := make([]byte, 100_000)
	rand.Read(blob)
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
	if code := push(blob, "sha256:"+strings.Repeat("0", 64)); code != http.StatusBadRequest {
		t.Fatalf("PUT with another digest: %d, want 400", code)
	}
	if code := push(blob, digest); code != http.StatusCreated {
		t.Fatalf("PUT: %d, want 201", code)
	}
	if layout {
		hex := strings.TrimPrefix(digest, "sha256:")
		data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", hex[:2], hex, "data"))
		if err != nil || !bytes.Equal(data, blob) {
			t.Fatalf("blob in the layout: %d bytes, %v", len(data), err)
		}
		link, err := os.ReadFile(filepath.Join(dir, "repositories", "a", "b", "_layers", "sha256", hex, "link"))
		if err != nil || string(link) != digest {
			t.Fatalf("link: %q, %v", link, err)
		}
	}
	resp := do(http.MethodGet, srv.URL+"/v2/a/b/blobs/"+digest, "", nil)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, blob) || resp.Header.Get("Docker-Content-Digest") != digest {
		t.Fatalf("GET blob: %d bytes, equal %v, digest %q", len(got), bytes.Equal(got, blob), resp.Header.Get("Docker-Content-Digest"))
	}

	manifest := []byte(`{"schemaVersion":2}`)
	const mt = "application/vnd.oci.image.manifest.v1+json"
	resp = do(http.MethodPut, srv.URL+"/v2/a/b/manifests/v1", mt, manifest)
	resp.Body.Close()
	md := resp.Header.Get("Docker-Content-Digest")
	if resp.StatusCode != http.StatusCreated || md != fmt.Sprintf("sha256:%x", sha256.Sum256(manifest)) {
		t.Fatalf("PUT manifest: %s, digest %q", resp.Status, md)
	}
	if layout {
		hex := strings.TrimPrefix(md, "sha256:")
		repo := filepath.Join(dir, "repositories", "a", "b", "_manifests")
		for _, link := range []string{
			filepath.Join(repo, "revisions", "sha256", hex, "link"),
			filepath.Join(repo, "tags", "v1", "current", "link"),
			filepath.Join(repo, "tags", "v1", "index", "sha256", hex, "link"),
		} {
			if got, err := os.ReadFile(link); err != nil || string(got) != md {
				t.Fatalf("%s: %q, %v", link, got, err)
			}
		}
		if got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", hex[:2], hex, "data")); err != nil || !bytes.Equal(got, manifest) {
			t.Fatalf("manifest blob: %q, %v", got, err)
		}
	}
	for _, ref := range []string{"v1", md} {
		resp = do(http.MethodGet, srv.URL+"/v2/a/b/manifests/"+ref, "", nil)
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(got, manifest) || resp.Header.Get("Content-Type") != mt || resp.Header.Get("Docker-Content-Digest") != md {
			t.Fatalf("GET manifest %s: %q, %q, %q", ref, got, resp.Header.Get("Content-Type"), resp.Header.Get("Docker-Content-Digest"))
		}
	}
}
