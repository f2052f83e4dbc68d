package storage

import (
	"context"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestReferrers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		repo := newRegistry(open, Options{}).Repository("app")
		subject := newImage(t, "subject")
		subjectDesc := &ocispec.Descriptor{MediaType: subject.mediaType, Digest: subject.digest, Size: int64(len(subject.payload))}
		pushBlob(t, repo, ocispec.DescriptorEmptyJSON.Data)
		sbomConfig := []byte(`{"sbom":true}`)
		pushBlob(t, repo, sbomConfig)

		// Referrers may be pushed before their subject.
		sig := newImage(t, "sig", func(m *ocispec.Manifest) {
			m.ArtifactType = "application/vnd.example.sig"
			m.Config = ocispec.DescriptorEmptyJSON
			m.Layers = []ocispec.Descriptor{ocispec.DescriptorEmptyJSON}
			m.Subject = subjectDesc
			m.Annotations = map[string]string{"org.example.signer": "me"}
		})
		sbom := newImage(t, "sbom", func(m *ocispec.Manifest) {
			// No artifactType: the config media type stands in.
			m.Config = ocispec.Descriptor{MediaType: "application/vnd.example.sbom.config", Digest: digest.FromBytes(sbomConfig), Size: int64(len(sbomConfig))}
			m.Layers = []ocispec.Descriptor{ocispec.DescriptorEmptyJSON}
			m.Subject = subjectDesc
		})
		for _, r := range []*image{sig, sbom} {
			if _, err := repo.PutManifest(ctx, string(r.digest), r.mediaType, r.payload); err != nil {
				t.Fatal(err)
			}
		}
		// An index referrer with no artifactType reports none.
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}, Subject: subjectDesc}
		idx.SchemaVersion = 2
		idxPayload := mustJSON(t, idx)
		idxDigest := digest.FromBytes(idxPayload)
		if _, err := repo.PutManifest(ctx, string(idxDigest), ocispec.MediaTypeImageIndex, idxPayload); err != nil {
			t.Fatal(err)
		}
		subject.push(t, repo, "v1")
		unrelated := newImage(t, "unrelated")
		unrelated.push(t, repo, "v2")

		tests := []struct {
			filter string
			want   map[digest.Digest]string // digest → artifactType
		}{
			{"", map[digest.Digest]string{sig.digest: "application/vnd.example.sig", sbom.digest: "application/vnd.example.sbom.config", idxDigest: ""}},
			{"application/vnd.example.sig", map[digest.Digest]string{sig.digest: "application/vnd.example.sig"}},
			{"application/vnd.example.sbom.config", map[digest.Digest]string{sbom.digest: "application/vnd.example.sbom.config"}},
			{"application/none", map[digest.Digest]string{}},
		}
		for _, r := range []Repository{repo, newRegistry(open, Options{}).Repository("app")} {
			for _, tt := range tests {
				got, err := r.Referrers(ctx, subject.digest, tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				if got == nil || len(got) != len(tt.want) {
					t.Fatalf("Referrers(%q) = %+v, want %d", tt.filter, got, len(tt.want))
				}
				for _, ref := range got {
					at, ok := tt.want[ref.Digest]
					if !ok || ref.ArtifactType != at {
						t.Errorf("Referrers(%q): unexpected %+v", tt.filter, ref)
					}
					if ref.Digest == sig.digest {
						if ref.Annotations["org.example.signer"] != "me" || ref.MediaType != ocispec.MediaTypeImageManifest || ref.Size != int64(len(sig.payload)) {
							t.Errorf("sig referrer = %+v", ref)
						}
					}
					if ref.Digest == idxDigest && ref.MediaType != ocispec.MediaTypeImageIndex {
						t.Errorf("index referrer media type %q", ref.MediaType)
					}
				}
			}
		}
		if got, err := repo.Referrers(ctx, unrelated.digest, ""); err != nil || len(got) != 0 {
			t.Fatalf("Referrers(unrelated) = %+v, %v", got, err)
		}
		if got, err := newRegistry(open, Options{}).Repository("other").Referrers(ctx, subject.digest, ""); err != nil || len(got) != 0 {
			t.Fatalf("Referrers in another repository = %+v, %v", got, err)
		}
	})
}

// TestReferrersFromTagSchema: manifests listed in the index at the
// referrers tag (what clients push to a registry without the API, such as
// Distribution) are referrers too, if their subject says so.
func TestReferrersFromTagSchema(t *testing.T) {
	ctx := context.Background()
	open := inmemoryBackend().new(t)
	repo := newRegistry(open, Options{}).Repository("app")
	subject := newImage(t, "subject")
	subject.push(t, repo, "v1")
	pushBlob(t, repo, ocispec.DescriptorEmptyJSON.Data)
	sig := newImage(t, "sig", func(m *ocispec.Manifest) {
		m.ArtifactType = "application/vnd.example.sig"
		m.Config = ocispec.DescriptorEmptyJSON
		m.Layers = []ocispec.Descriptor{ocispec.DescriptorEmptyJSON}
		m.Subject = &ocispec.Descriptor{MediaType: subject.mediaType, Digest: subject.digest, Size: int64(len(subject.payload))}
	})
	if _, err := repo.PutManifest(ctx, string(sig.digest), sig.mediaType, sig.payload); err != nil {
		t.Fatal(err)
	}
	// Erase Berth's index, as if Distribution had stored the referrer.
	if err := driver.Wrap(open()).Delete(ctx, repoPath("app")+"/_referrers"); err != nil {
		t.Fatal(err)
	}
	notReferrer := newImage(t, "plain")
	notReferrer.push(t, repo, string(notReferrer.digest))
	tagIndex := indexOf(t, sig, notReferrer)
	if _, err := repo.PutManifest(ctx, "sha256-"+subject.digest.Encoded(), ocispec.MediaTypeImageIndex, tagIndex); err != nil {
		t.Fatal(err)
	}
	got, err := newRegistry(open, Options{}).Repository("app").Referrers(ctx, subject.digest, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Digest != sig.digest || got[0].ArtifactType != "application/vnd.example.sig" {
		t.Fatalf("Referrers = %+v", got)
	}
}

func TestReferrersTag(t *testing.T) {
	d := digest.Digest("sha512:" + bytesOfHex(128))
	if got, want := referrersTag(d), "sha512-"+bytesOfHex(64); got != want {
		t.Fatalf("referrersTag = %q, want %q", got, want)
	}
}
