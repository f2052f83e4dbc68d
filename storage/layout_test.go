package storage

import (
	"context"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestLayoutIsDistributions pushes an image, a tag and a referrer and
// checks every file of the resulting tree, path and content, against CNCF
// Distribution's layout (plus Berth's _referrers index).
func TestLayoutIsDistributions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := newRegistry(open, Options{})
		repo := reg.Repository("team/app")
		img := newImage(t, "layout")
		img.push(t, repo, "v1")

		sig := []byte(`{"sig":1}`)
		ref := newImage(t, "ref", func(m *ocispec.Manifest) {
			m.ArtifactType = "application/vnd.example.sig"
			m.Config = ocispec.DescriptorEmptyJSON
			m.Layers = []ocispec.Descriptor{{MediaType: "application/octet-stream", Digest: digest.FromBytes(sig), Size: int64(len(sig))}}
			m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.digest, Size: int64(len(img.payload))}
		})
		pushBlob(t, repo, ocispec.DescriptorEmptyJSON.Data)
		pushBlob(t, repo, sig)
		if _, err := repo.PutManifest(ctx, string(ref.digest), ocispec.MediaTypeImageManifest, ref.payload); err != nil {
			t.Fatal(err)
		}

		blob := func(content []byte) (string, string) {
			d := digest.FromBytes(content)
			return "/docker/registry/v2/blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded() + "/data", string(content)
		}
		r := "/docker/registry/v2/repositories/team/app/"
		want := map[string]string{}
		add := func(p, c string) { want[p] = c }
		for _, c := range [][]byte{img.config, img.layers[0], img.layers[1], img.payload, ocispec.DescriptorEmptyJSON.Data, sig, ref.payload} {
			add(blob(c))
		}
		for _, c := range [][]byte{img.config, img.layers[0], img.layers[1], ocispec.DescriptorEmptyJSON.Data, sig} {
			d := digest.FromBytes(c)
			add(r+"_layers/sha256/"+d.Encoded()+"/link", string(d))
		}
		add(r+"_manifests/revisions/sha256/"+img.digest.Encoded()+"/link", string(img.digest))
		add(r+"_manifests/revisions/sha256/"+ref.digest.Encoded()+"/link", string(ref.digest))
		add(r+"_manifests/tags/v1/current/link", string(img.digest))
		add(r+"_manifests/tags/v1/index/sha256/"+img.digest.Encoded()+"/link", string(img.digest))
		add(r+"_referrers/sha256/"+img.digest.Encoded()+"/sha256/"+ref.digest.Encoded()+"/link", string(ref.digest))
		if !driver.HasDirTimes(open()) {
			// On an object store, the repository's catalog marker
			// (catalogindex.go), which Distribution ignores.
			add("/docker/registry/v2/_berth/catalog/names/"+hex.EncodeToString([]byte("team/app")), "")
		}

		got := tree(t, open())
		if !slices.Equal(treePaths(got), treePaths(want)) {
			t.Fatalf("tree paths:\n got %q\nwant %q", treePaths(got), treePaths(want))
		}
		for p, c := range want {
			if got[p] != c {
				t.Errorf("%s = %q, want %q", p, got[p], c)
			}
		}
	})
}

// TestUploadLayout checks the files of an unfinished upload shared with
// CNCF Distribution: data, startedat (RFC 3339) and the digest state at
// the offset written. (Berth alone keeps the digest state in the release
// of the session's lease.)
func TestUploadLayout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := newRegistry(open, Options{DistributionUploads: true})
		repo := reg.Repository("app")
		u, err := repo.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		dir := "/docker/registry/v2/repositories/app/_uploads/" + u.ID()
		d := driver.Wrap(open())
		b, err := driver.GetContent(ctx, d, dir+"/startedat", 100)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != u.StartedAt().Format("2006-01-02T15:04:05Z07:00") {
			t.Errorf("startedat = %q, want %q", b, u.StartedAt().Format("2006-01-02T15:04:05Z07:00"))
		}
		if _, err := driver.GetContent(ctx, d, dir+"/hashstates/sha256/10", 1024); err != nil {
			t.Errorf("hash state at offset 10: %v", err)
		}
		if !validUploadID(u.ID()) {
			t.Errorf("upload id %q is not a UUID", u.ID())
		}
	})
}

func TestPathsFollowDistribution(t *testing.T) {
	d := digest.Digest("sha256:" + "ab" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd")
	tests := []struct{ got, want string }{
		{blobDataPath(d), "/docker/registry/v2/blobs/sha256/ab/" + d.Encoded() + "/data"},
		{layerLinkPath("a/b", d), "/docker/registry/v2/repositories/a/b/_layers/sha256/" + d.Encoded() + "/link"},
		{revisionLinkPath("a", d), "/docker/registry/v2/repositories/a/_manifests/revisions/sha256/" + d.Encoded() + "/link"},
		{tagCurrentLinkPath("a", "v1"), "/docker/registry/v2/repositories/a/_manifests/tags/v1/current/link"},
		{tagIndexLinkPath("a", "v1", d), "/docker/registry/v2/repositories/a/_manifests/tags/v1/index/sha256/" + d.Encoded() + "/link"},
		{uploadDataPath("a", "u"), "/docker/registry/v2/repositories/a/_uploads/u/data"},
		{uploadStartedAtPath("a", "u"), "/docker/registry/v2/repositories/a/_uploads/u/startedat"},
		{uploadHashStatePath("a", "u", digest.SHA512, 42), "/docker/registry/v2/repositories/a/_uploads/u/hashstates/sha512/42"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}
