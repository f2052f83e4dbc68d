package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// backend builds a fresh, empty backend for one test. Calling open again
// on the same backend gives another driver onto the same store, as a
// second instance of the server would have.
type backend struct {
	name string
	new  func(t *testing.T) (open func() driver.Driver)
}

func inmemoryBackend() backend {
	return backend{name: "inmemory", new: func(t *testing.T) func() driver.Driver {
		d := inmemory.New()
		return func() driver.Driver { return d }
	}}
}

// backends are what every content-model test runs against: the driver
// for tests, and the one with real files (backends_fs_test.go).
var backends = []backend{inmemoryBackend(), filesystemBackend()}

// forEachBackend runs fn as a subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, open func() driver.Driver)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.new(t)) })
	}
}

func newRegistry(open func() driver.Driver, opts Options) *Registry {
	return New(open(), opts, nil)
}

// pushBlob uploads content to repo in one request.
func pushBlob(t *testing.T, repo Repository, content []byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	u, err := repo.NewUpload(ctx)
	if err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	if _, err := u.Write(content); err != nil {
		t.Fatalf("Write: %v", err)
	}
	d := digest.FromBytes(content)
	desc, err := u.Commit(ctx, d)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if desc.Digest != d || desc.Size != int64(len(content)) {
		t.Fatalf("Commit = %+v, want %s size %d", desc, d, len(content))
	}
	return d
}

// image is a small OCI image: its config and layers are pushed by
// pushImage.
type image struct {
	config    []byte
	layers    [][]byte
	manifest  ocispec.Manifest
	payload   []byte
	digest    digest.Digest
	mediaType string
}

func newImage(t *testing.T, seed string, mutate ...func(*ocispec.Manifest)) *image {
	t.Helper()
	img := &image{
		config: []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`),
		layers: [][]byte{[]byte("layer one " + seed), []byte("layer two " + seed)},
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(img.config), Size: int64(len(img.config))},
	}
	m.SchemaVersion = 2
	for _, l := range img.layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(l), Size: int64(len(l))})
	}
	for _, f := range mutate {
		f(&m)
	}
	img.manifest = m
	img.payload = mustJSON(t, m)
	img.digest = digest.FromBytes(img.payload)
	img.mediaType = ocispec.MediaTypeImageManifest
	return img
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (img *image) pushBlobs(t *testing.T, repo Repository) {
	t.Helper()
	pushBlob(t, repo, img.config)
	for _, l := range img.layers {
		pushBlob(t, repo, l)
	}
}

// push pushes the blobs and the manifest under ref.
func (img *image) push(t *testing.T, repo Repository, ref string) Manifest {
	t.Helper()
	img.pushBlobs(t, repo)
	m, err := repo.PutManifest(context.Background(), ref, img.mediaType, img.payload)
	if err != nil {
		t.Fatalf("PutManifest(%s): %v", ref, err)
	}
	return m
}

func indexOf(t *testing.T, children ...*image) []byte {
	t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for i, c := range children {
		arch := []string{"amd64", "arm64", "s390x"}[i%3]
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: c.mediaType, Digest: c.digest, Size: int64(len(c.payload)),
			Platform: &ocispec.Platform{OS: "linux", Architecture: arch},
		})
	}
	return mustJSON(t, idx)
}

// tree returns every file below root with its content.
func tree(t *testing.T, d driver.Driver) map[string]string {
	t.Helper()
	ctx := context.Background()
	files := map[string]string{}
	err := driver.Walk(ctx, driver.Wrap(d), "/", func(fi driver.FileInfo) error {
		if fi.IsDir {
			return nil
		}
		b, err := driver.GetContent(ctx, driver.Wrap(d), fi.Path, 64<<20)
		if err != nil {
			return err
		}
		files[fi.Path] = string(b)
		return nil
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("walk: %v", err)
	}
	return files
}

// contentTree is tree without the catalog index, whose markers outlive
// what a test removes until a collection prunes them.
func contentTree(t *testing.T, d driver.Driver) map[string]string {
	t.Helper()
	files := tree(t, d)
	for p := range files {
		if strings.HasPrefix(p, catalogRoot+"/") {
			delete(files, p)
		}
	}
	return files
}

func treePaths(files map[string]string) []string {
	var out []string
	for p := range files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func readAll(t *testing.T, b Blob) []byte {
	t.Helper()
	defer b.Close()
	var r io.Reader = b
	if f := b.File(); f != nil {
		r = f
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read blob: %v", err)
	}
	return got
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func bytesOf(n int, seed byte) []byte {
	return bytes.Repeat([]byte{seed}, n)
}

func hasPrefix(paths []string, prefix string) []string {
	var out []string
	for _, p := range paths {
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	return out
}

func isErr(err, target error) bool { return errors.Is(err, target) }
