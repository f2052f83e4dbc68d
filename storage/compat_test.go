package storage

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

// distributionFixture is storage/testdata/distribution-v3/expected.json:
// what a tree written by CNCF Distribution v3 holds, read through its API.
type distributionFixture struct {
	Generator    string `json:"generator"`
	Repositories []struct {
		Name      string                   `json:"name"`
		Tags      map[string]digest.Digest `json:"tags"`
		Manifests []struct {
			Digest    digest.Digest `json:"digest"`
			MediaType string        `json:"mediaType"`
			Size      int64         `json:"size"`
		} `json:"manifests"`
		Layers  []digest.Digest `json:"layers"`
		Uploads []string        `json:"uploads"`
	} `json:"repositories"`
	Blobs []struct {
		Digest digest.Digest `json:"digest"`
		Size   int64         `json:"size"`
	} `json:"blobs"`
}

// TestServesTreeWrittenByDistribution opens a copy of a storage tree
// written by CNCF Distribution v3.1.2 and checks that Berth finds every
// repository, tag, manifest (digest and media type), blob and unfinished
// upload in it.
func TestServesTreeWrittenByDistribution(t *testing.T) {
	const fixture = "testdata/distribution-v3"
	raw, err := os.ReadFile(filepath.Join(fixture, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want distributionFixture
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(fixture)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := New(openFilesystem(t, root), Options{}, nil)

	var names []string
	for _, r := range want.Repositories {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	if got, err := reg.Catalog(ctx, 0, ""); err != nil || !slices.Equal(got, names) {
		t.Fatalf("Catalog = %q, %v; want %q", got, err, names)
	}

	sizes := map[digest.Digest]int64{}
	for _, b := range want.Blobs {
		sizes[b.Digest] = b.Size
		bi, err := reg.statGlobal(ctx, b.Digest)
		if err != nil || bi.size != b.Size {
			t.Errorf("blob %s: %+v, %v; want size %d", b.Digest, bi, err, b.Size)
		}
	}

	for _, r := range want.Repositories {
		t.Run(r.Name, func(t *testing.T) {
			repo := reg.Repository(r.Name)
			tags, _, err := repo.Tags(ctx, 0, "")
			if err != nil || !slices.Equal(tags, slices.Sorted(maps.Keys(r.Tags))) {
				t.Errorf("Tags = %q, %v; want %q", tags, err, slices.Sorted(maps.Keys(r.Tags)))
			}
			for tag, d := range r.Tags {
				m, err := repo.GetManifest(ctx, tag)
				if err != nil || m.Digest != d {
					t.Errorf("tag %s: %s, %v; want %s", tag, m.Digest, err, d)
				}
			}
			for _, wm := range r.Manifests {
				m, err := repo.GetManifest(ctx, string(wm.Digest))
				if err != nil {
					t.Errorf("manifest %s: %v", wm.Digest, err)
					continue
				}
				if got := digest.FromBytes(m.Payload); got != wm.Digest {
					t.Errorf("manifest %s: payload digest %s", wm.Digest, got)
				}
				if m.MediaType != wm.MediaType || m.Size != wm.Size {
					t.Errorf("manifest %s: %q size %d; want %q size %d", wm.Digest, m.MediaType, m.Size, wm.MediaType, wm.Size)
				}
				if refs, err := repo.Referrers(ctx, wm.Digest, ""); err != nil || len(refs) != 0 {
					t.Errorf("referrers of %s: %+v, %v", wm.Digest, refs, err)
				}
			}
			for _, d := range r.Layers {
				b, err := repo.OpenBlob(ctx, d)
				if err != nil {
					t.Errorf("layer %s: %v", d, err)
					continue
				}
				content, err := io.ReadAll(b)
				b.Close()
				if err != nil || digest.FromBytes(content) != d || int64(len(content)) != sizes[d] {
					t.Errorf("layer %s: read %d bytes, %v", d, len(content), err)
				}
			}
			for _, id := range r.Uploads {
				// Distribution left 14 bytes ("half of a blob") and the
				// sha256 state at that offset. Berth resumes the bytes;
				// the state it does not trust, as no Berth request
				// vouched for it, so the commit hashes the stored bytes.
				u, err := repo.ResumeUpload(ctx, id)
				if err != nil {
					t.Errorf("upload %s: %v", id, err)
					continue
				}
				if u.Size() != 14 || u.(*upload).h != nil {
					t.Errorf("upload %s resumed at %d (digest state trusted: %v), want 14, not trusted", id, u.Size(), u.(*upload).h != nil)
				}
				if _, err := u.Write([]byte(", and the rest")); err != nil {
					t.Fatal(err)
				}
				if err := u.Close(ctx); err != nil {
					t.Errorf("upload %s: Close: %v", id, err)
				}
				if u, err = reg.Repository(r.Name).ResumeUpload(ctx, id); err != nil {
					t.Fatal(err)
				}
				d := digest.FromString("half of a blob, and the rest")
				if _, err := u.Commit(ctx, d); err != nil {
					t.Errorf("upload %s: Commit: %v", id, err)
				} else if _, err := repo.StatBlob(ctx, d); err != nil {
					t.Errorf("upload %s: committed blob: %v", id, err)
				}
			}
		})
	}
}
