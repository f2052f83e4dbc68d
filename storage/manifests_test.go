package storage

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPutAndGetManifest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		repo := newRegistry(open, Options{}).Repository("app")
		img := newImage(t, "get")
		m := img.push(t, repo, "v1")
		if m.Digest != img.digest || m.MediaType != ocispec.MediaTypeImageManifest || m.Size != int64(len(img.payload)) {
			t.Fatalf("PutManifest = %+v", m.Descriptor)
		}
		// A fresh instance (empty cache) and the pushing one agree.
		for _, r := range []Repository{repo, newRegistry(open, Options{}).Repository("app")} {
			for _, ref := range []string{"v1", string(img.digest)} {
				got, err := r.GetManifest(ctx, ref)
				if err != nil {
					t.Fatalf("GetManifest(%s): %v", ref, err)
				}
				if !bytes.Equal(got.Payload, img.payload) || got.Digest != img.digest || got.MediaType != img.mediaType {
					t.Fatalf("GetManifest(%s) = %+v", ref, got.Descriptor)
				}
				desc, err := r.StatManifest(ctx, ref)
				if err != nil || desc != got.Descriptor {
					t.Fatalf("StatManifest(%s) = %+v, %v", ref, desc, err)
				}
			}
		}
		_, err := repo.GetManifest(ctx, "v2")
		wantErr(t, err, ErrManifestUnknown)
		_, err = newRegistry(open, Options{}).Repository("other").GetManifest(ctx, string(img.digest))
		wantErr(t, err, ErrManifestUnknown)
	})
}

func TestTagMovesAndIsReadEveryTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		a := newRegistry(open, Options{}).Repository("app")
		b := newRegistry(open, Options{}).Repository("app")
		one, two := newImage(t, "one"), newImage(t, "two")
		one.push(t, a, "latest")
		if m, _ := b.GetManifest(ctx, "latest"); m.Digest != one.digest {
			t.Fatalf("latest = %s", m.Digest)
		}
		two.push(t, a, "latest")
		if m, _ := b.GetManifest(ctx, "latest"); m.Digest != two.digest {
			t.Fatalf("instance b still sees latest = %s", m.Digest)
		}
		// Both revisions stay in the tag's index, as Distribution keeps them.
		files := tree(t, open())
		for _, d := range []digest.Digest{one.digest, two.digest} {
			if files[tagIndexLinkPath("app", "latest", d)] != string(d) {
				t.Errorf("tag index lacks %s", d)
			}
		}
	})
}

func TestManifestMediaTypes(t *testing.T) {
	ctx := context.Background()
	repo := newRegistry(inmemoryBackend().new(t), Options{})
	r := repo.Repository("app")
	child := newImage(t, "child")
	child.push(t, r, string(child.digest))
	cfg := []byte(`{"docker":1}`)
	pushBlob(t, r, cfg)
	docker := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":12,"digest":"` + string(digest.FromBytes(cfg)) + `"},"layers":[]}`
	dockerList := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"` + string(child.digest) + `","platform":{"os":"linux","architecture":"amd64"}}]}`
	noTypeIndex := `{"schemaVersion":2,"manifests":[]}`
	noTypeManifest := `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":12,"digest":"` + string(digest.FromBytes(cfg)) + `"},"layers":[]}`
	tests := []struct {
		name, contentType, payload, want string
	}{
		{"oci manifest", ocispec.MediaTypeImageManifest, string(child.payload), ocispec.MediaTypeImageManifest},
		{"oci index", ocispec.MediaTypeImageIndex, string(indexOf(t, child)), ocispec.MediaTypeImageIndex},
		{"docker manifest", "application/vnd.docker.distribution.manifest.v2+json", docker, "application/vnd.docker.distribution.manifest.v2+json"},
		{"docker list", "application/vnd.docker.distribution.manifest.list.v2+json", dockerList, "application/vnd.docker.distribution.manifest.list.v2+json"},
		{"index without mediaType", ocispec.MediaTypeImageIndex, noTypeIndex, ocispec.MediaTypeImageIndex},
		{"manifest without mediaType", ocispec.MediaTypeImageManifest, noTypeManifest, ocispec.MediaTypeImageManifest},
		{"no content type", "", string(child.payload), ocispec.MediaTypeImageManifest},
		{"content type with parameters", ocispec.MediaTypeImageManifest + "; charset=utf-8", string(child.payload), ocispec.MediaTypeImageManifest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := r.PutManifest(ctx, "t", tt.contentType, []byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != tt.want {
				t.Fatalf("put media type %q, want %q", m.MediaType, tt.want)
			}
			// A fresh instance derives the same type from the payload.
			got, err := New(repo.Driver(), Options{}, nil).Repository("app").StatManifest(ctx, "t")
			if err != nil || got.MediaType != tt.want {
				t.Fatalf("StatManifest = %+v, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestPutManifestRejects(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(inmemoryBackend().new(t), Options{})
	repo := reg.Repository("app")
	img := newImage(t, "ok")
	img.pushBlobs(t, repo)
	missingLayer := newImage(t, "missing")
	pushBlob(t, repo, missingLayer.config)
	pushBlob(t, repo, missingLayer.layers[0])
	missingConfig := newImage(t, "noconfig")
	pushBlob(t, repo, missingConfig.layers[0])
	pushBlob(t, repo, missingConfig.layers[1])
	orphanChild := newImage(t, "orphan")

	tests := []struct {
		name, ref, contentType string
		payload                []byte
		want                   error
		wantDigest             digest.Digest
		wantDetail             string
	}{
		{"schema 1 by content type", "v1", "application/vnd.docker.distribution.manifest.v1+prettyjws", []byte(`{"schemaVersion":1}`), ErrManifestInvalid, "", "schema 1"},
		{"schema 1 by payload", "v1", "", []byte(`{"schemaVersion":1,"name":"app","tag":"v1","fsLayers":[]}`), ErrManifestInvalid, "", "schema 1"},
		{"not json", "v1", ocispec.MediaTypeImageManifest, []byte("nope"), ErrManifestInvalid, "", ""},
		{"no schemaVersion", "v1", ocispec.MediaTypeImageManifest, []byte(`{"config":{}}`), ErrManifestInvalid, "", "schemaVersion"},
		{"too large", "v1", ocispec.MediaTypeImageManifest, append(append([]byte(`{"schemaVersion":2,"x":"`), bytes.Repeat([]byte("a"), 4<<20)...), '"', '}'), ErrManifestInvalid, "", "larger"},
		{"mediaType differs from content type", "v1", ocispec.MediaTypeImageIndex, img.payload, ErrManifestInvalid, "", "does not match"},
		{"unknown media type", "v1", "application/vnd.example+json", []byte(`{"schemaVersion":2,"config":{"mediaType":"a","digest":"` + string(img.manifest.Config.Digest) + `","size":1}}`), ErrManifestInvalid, "", "unsupported"},
		{"docker manifest without mediaType", "v1", "application/vnd.docker.distribution.manifest.v2+json", []byte(`{"schemaVersion":2,"config":{"mediaType":"a","digest":"` + string(img.manifest.Config.Digest) + `","size":1},"layers":[]}`), ErrManifestInvalid, "", "mediaType"},
		{"index without manifests", "v1", ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":2}`), ErrManifestInvalid, "", "manifests"},
		{"manifest without config", "v1", ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`), ErrManifestInvalid, "", "config"},
		{"bad descriptor digest", "v1", ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:zz","size":1},"layers":[]}`), ErrManifestInvalid, "", ""},
		{"digest mismatch", string(digest.FromString("other")), ocispec.MediaTypeImageManifest, img.payload, ErrDigestInvalid, "", ""},
		{"unsupported digest", "md5:d41d8cd98f00b204e9800998ecf8427e", ocispec.MediaTypeImageManifest, img.payload, ErrUnsupportedDigest, "", ""},
		{"invalid tag", "-v1", ocispec.MediaTypeImageManifest, img.payload, ErrManifestInvalid, "", ""},
		{"missing layer", "v1", ocispec.MediaTypeImageManifest, missingLayer.payload, ErrManifestBlobUnknown, missingLayer.manifest.Layers[1].Digest, ""},
		{"missing config", "v1", ocispec.MediaTypeImageManifest, missingConfig.payload, ErrManifestBlobUnknown, missingConfig.manifest.Config.Digest, ""},
		{"missing index child", "v1", ocispec.MediaTypeImageIndex, indexOf(t, orphanChild), ErrManifestBlobUnknown, orphanChild.digest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := repo.PutManifest(ctx, tt.ref, tt.contentType, tt.payload)
			wantErr(t, err, tt.want)
			var e *Error
			if tt.wantDigest != "" && (!asError(err, &e) || e.Digest != tt.wantDigest) {
				t.Fatalf("error %v does not name %s", err, tt.wantDigest)
			}
			if tt.wantDetail != "" && !strings.Contains(err.Error(), tt.wantDetail) {
				t.Fatalf("error %q does not mention %q", err, tt.wantDetail)
			}
		})
	}
	// Nothing of the rejected manifests is stored.
	for p := range tree(t, reg.Driver()) {
		if strings.Contains(p, "_manifests") {
			t.Errorf("stored after rejection: %s", p)
		}
	}
}

func TestManifestValidationOptions(t *testing.T) {
	ctx := context.Background()
	layerURL := "https://cdn.example.com/layer"
	withURLLayer := func(mt string) func(*ocispec.Manifest) {
		return func(m *ocispec.Manifest) {
			m.Layers[1].MediaType = mt
			m.Layers[1].URLs = []string{layerURL}
		}
	}
	children := []*image{newImage(t, "amd"), newImage(t, "arm")}
	tests := []struct {
		name    string
		opts    ManifestValidation
		payload func(t *testing.T, repo Repository) (string, []byte)
		ok      bool
	}{
		{"disabled skips existence checks", ManifestValidation{Disabled: true}, func(t *testing.T, repo Repository) (string, []byte) {
			return ocispec.MediaTypeImageManifest, newImage(t, "x").payload
		}, true},
		{"nondistributable layer need not exist", ManifestValidation{}, func(t *testing.T, repo Repository) (string, []byte) {
			img := newImage(t, "nd", withURLLayer(mtNonDistributable))
			pushBlob(t, repo, img.config)
			pushBlob(t, repo, img.layers[0])
			return img.mediaType, img.payload
		}, true},
		{"docker foreign layer need not exist", ManifestValidation{}, func(t *testing.T, repo Repository) (string, []byte) {
			img := newImage(t, "foreign", withURLLayer("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"))
			pushBlob(t, repo, img.config)
			pushBlob(t, repo, img.layers[0])
			return img.mediaType, img.payload
		}, true},
		{"nondistributable layer with denied url", ManifestValidation{URLsDeny: []string{`^https://cdn\.example\.com/`}}, func(t *testing.T, repo Repository) (string, []byte) {
			img := newImage(t, "nd", withURLLayer(mtNonDistributable))
			pushBlob(t, repo, img.config)
			pushBlob(t, repo, img.layers[0])
			return img.mediaType, img.payload
		}, false},
		{"layer with urls refused without allow", ManifestValidation{}, func(t *testing.T, repo Repository) (string, []byte) {
			img := newImage(t, "urls", withURLLayer(ocispec.MediaTypeImageLayerGzip))
			pushBlob(t, repo, img.config)
			pushBlob(t, repo, img.layers[0])
			return img.mediaType, img.payload
		}, false},
		{"layer with allowed urls", ManifestValidation{URLsAllow: []string{`^https://cdn\.example\.com/`}}, func(t *testing.T, repo Repository) (string, []byte) {
			img := newImage(t, "urls", withURLLayer(ocispec.MediaTypeImageLayerGzip))
			pushBlob(t, repo, img.config)
			pushBlob(t, repo, img.layers[0])
			return img.mediaType, img.payload
		}, true},
		{"layer with allowed then denied urls", ManifestValidation{URLsAllow: []string{`^https://`}, URLsDeny: []string{`cdn`}}, func(t *testing.T, repo Repository) (string, []byte) {
			img := newImage(t, "urls", withURLLayer(ocispec.MediaTypeImageLayerGzip))
			pushBlob(t, repo, img.config)
			pushBlob(t, repo, img.layers[0])
			return img.mediaType, img.payload
		}, false},
		{"index platforms all", ManifestValidation{IndexPlatforms: "all"}, func(t *testing.T, repo Repository) (string, []byte) {
			children[0].push(t, repo, string(children[0].digest))
			return ocispec.MediaTypeImageIndex, indexOf(t, children...)
		}, false},
		{"index platforms none", ManifestValidation{IndexPlatforms: "none"}, func(t *testing.T, repo Repository) (string, []byte) {
			return ocispec.MediaTypeImageIndex, indexOf(t, children...)
		}, true},
		{"index platforms list, listed child present", ManifestValidation{IndexPlatforms: "list", IndexPlatformList: []Platform{{OS: "linux", Architecture: "amd64"}}}, func(t *testing.T, repo Repository) (string, []byte) {
			children[0].push(t, repo, string(children[0].digest))
			return ocispec.MediaTypeImageIndex, indexOf(t, children...)
		}, true},
		{"index platforms list, listed child missing", ManifestValidation{IndexPlatforms: "list", IndexPlatformList: []Platform{{OS: "linux", Architecture: "arm64"}}}, func(t *testing.T, repo Repository) (string, []byte) {
			children[0].push(t, repo, string(children[0].digest))
			return ocispec.MediaTypeImageIndex, indexOf(t, children...)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := newRegistry(inmemoryBackend().new(t), Options{Validation: tt.opts}).Repository("app")
			ct, payload := tt.payload(t, repo)
			_, err := repo.PutManifest(ctx, "v1", ct, payload)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok {
				wantErr(t, err, ErrManifestBlobUnknown)
			}
		})
	}
}

// TestArtifactManifestIsAnOrdinaryManifest: an artifact (artifactType,
// empty config) is stored and served like any OCI image manifest; its
// subject need not exist.
func TestArtifactManifestIsAnOrdinaryManifest(t *testing.T) {
	ctx := context.Background()
	repo := newRegistry(inmemoryBackend().new(t), Options{}).Repository("app")
	pushBlob(t, repo, ocispec.DescriptorEmptyJSON.Data)
	art := newImage(t, "art", func(m *ocispec.Manifest) {
		m.ArtifactType = "application/vnd.example.sbom"
		m.Config = ocispec.DescriptorEmptyJSON
		m.Layers = []ocispec.Descriptor{ocispec.DescriptorEmptyJSON}
		m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 1}
	})
	m, err := repo.PutManifest(ctx, string(art.digest), ocispec.MediaTypeImageManifest, art.payload)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != digest.FromString("absent") {
		t.Fatalf("Subject = %s", m.Subject)
	}
	got, err := repo.GetManifest(ctx, string(art.digest))
	if err != nil || got.MediaType != ocispec.MediaTypeImageManifest || got.Subject != m.Subject {
		t.Fatalf("GetManifest = %+v, %v", got, err)
	}
}

func TestDeleteManifestRemovesTagsAndReferrer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := newRegistry(open, Options{DeleteEnabled: true})
		repo := reg.Repository("app")
		img, other := newImage(t, "del"), newImage(t, "keep")
		img.push(t, repo, "a")
		img.push(t, repo, "b")
		other.push(t, repo, "c")
		pushBlob(t, repo, ocispec.DescriptorEmptyJSON.Data)
		ref := newImage(t, "r", func(m *ocispec.Manifest) {
			m.Config = ocispec.DescriptorEmptyJSON
			m.Layers = []ocispec.Descriptor{ocispec.DescriptorEmptyJSON}
			m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: other.digest, Size: int64(len(other.payload))}
		})
		if _, err := repo.PutManifest(ctx, string(ref.digest), ref.mediaType, ref.payload); err != nil {
			t.Fatal(err)
		}
		if _, err := repo.GetManifest(ctx, string(img.digest)); err != nil {
			t.Fatal(err) // cached now
		}
		if err := repo.DeleteManifest(ctx, img.digest); err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"a", "b", string(img.digest)} {
			_, err := repo.GetManifest(ctx, r)
			wantErr(t, err, ErrManifestUnknown)
		}
		if tags, _, _ := repo.Tags(ctx, 0, ""); len(tags) != 1 || tags[0] != "c" {
			t.Fatalf("tags after delete: %q", tags)
		}
		wantErr(t, repo.DeleteManifest(ctx, img.digest), ErrManifestUnknown)

		if refs, _ := repo.Referrers(ctx, other.digest, ""); len(refs) != 1 {
			t.Fatalf("referrers before delete: %+v", refs)
		}
		if err := repo.DeleteManifest(ctx, ref.digest); err != nil {
			t.Fatal(err)
		}
		if refs, err := repo.Referrers(ctx, other.digest, ""); err != nil || len(refs) != 0 {
			t.Fatalf("referrers after delete: %+v, %v", refs, err)
		}
		for p := range tree(t, open()) {
			if strings.Contains(p, "_referrers") || strings.Contains(p, img.digest.Encoded()+"/link") {
				t.Errorf("left behind: %s", p)
			}
		}
	})
}

func TestDeleteTag(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		repo := newRegistry(open, Options{DeleteEnabled: true}).Repository("app")
		img := newImage(t, "tag")
		img.push(t, repo, "v1")
		if err := repo.DeleteTag(ctx, "v1"); err != nil {
			t.Fatal(err)
		}
		_, err := repo.GetManifest(ctx, "v1")
		wantErr(t, err, ErrManifestUnknown)
		if _, err := repo.GetManifest(ctx, string(img.digest)); err != nil {
			t.Fatalf("manifest went with its tag: %v", err)
		}
		wantErr(t, repo.DeleteTag(ctx, "v1"), ErrManifestUnknown)
		wantErr(t, repo.DeleteTag(ctx, "../x"), ErrManifestUnknown)
	})
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

func TestPutManifestBySHA512Digest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		repo := newRegistry(open, Options{}).Repository("app")
		img := newImage(t, "sha512")
		img.pushBlobs(t, repo)
		d := digest.SHA512.FromBytes(img.payload)
		m, err := repo.PutManifest(ctx, string(d), img.mediaType, img.payload)
		if err != nil || m.Digest != d {
			t.Fatalf("PutManifest = %+v, %v", m.Descriptor, err)
		}
		files := tree(t, open())
		if files[revisionLinkPath("app", d)] != string(d) || files[blobDataPath(d)] != string(img.payload) {
			t.Fatalf("sha512 manifest not stored under sha512: %q", treePaths(files))
		}
		got, err := newRegistry(open, Options{}).Repository("app").GetManifest(ctx, string(d))
		if err != nil || got.Digest != d {
			t.Fatalf("GetManifest = %+v, %v", got.Descriptor, err)
		}
	})
}

// mtNonDistributable is the OCI non-distributable layer type: deprecated
// for new images, still served (the conformance suite pushes it).
const mtNonDistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
