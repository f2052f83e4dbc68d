package storage

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// TestBlobServedOnlyWhereLinked: a blob is in the global store once, but a
// repository serves it only when it links it.
func TestBlobServedOnlyWhereLinked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := newRegistry(open, Options{})
		d := pushBlob(t, reg.Repository("a"), []byte("only in a"))
		if _, err := reg.Repository("a").StatBlob(ctx, d); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"b", "a/b"} {
			_, err := reg.Repository(name).StatBlob(ctx, d)
			wantErr(t, err, ErrBlobUnknown)
			_, err = reg.Repository(name).OpenBlob(ctx, d)
			wantErr(t, err, ErrBlobUnknown)
		}
	})
}

// TestManifestIsNotABlobOfItsRepository matches Distribution: a manifest
// is linked under _manifests, not _layers, so GET /blobs/<its digest> is
// BLOB_UNKNOWN unless it was also pushed as a blob.
func TestManifestIsNotABlobOfItsRepository(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		repo := newRegistry(open, Options{}).Repository("a")
		img := newImage(t, "m")
		img.push(t, repo, "v1")
		_, err := repo.StatBlob(ctx, img.digest)
		wantErr(t, err, ErrBlobUnknown)
	})
}

func TestOpenBlobReadsAndSeeks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		repo := newRegistry(open, Options{}).Repository("a")
		content := []byte("0123456789abcdefghij")
		d := pushBlob(t, repo, content)
		b, err := repo.OpenBlob(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if got := b.Descriptor(); got.Digest != d || got.Size != int64(len(content)) || got.MediaType != "application/octet-stream" {
			t.Fatalf("Descriptor = %+v", got)
		}
		// The filesystem driver hands out the file itself, for sendfile.
		if _, ok := open().(driver.FileOpener); ok != (b.File() != nil) {
			t.Errorf("File() = %v with a driver that is a FileOpener: %v", b.File(), ok)
		}
		if b.ModTime().IsZero() {
			t.Error("zero ModTime")
		}
		// What http.ServeContent does for a range: size by seeking to the
		// end, then seek to the range start and read.
		end, err := b.Seek(0, io.SeekEnd)
		if err != nil || end != int64(len(content)) {
			t.Fatalf("Seek end = %d, %v", end, err)
		}
		if _, err := b.Seek(10, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "abcde" {
			t.Fatalf("read %q, %v", buf, err)
		}
		if _, err := b.Seek(-3, io.SeekCurrent); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(b)
		if err != nil || string(rest) != "cdefghij" {
			t.Fatalf("rest %q, %v", rest, err)
		}
	})
}

func TestDeleteBlobUnlinksOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := newRegistry(open, Options{DeleteEnabled: true})
		d := pushBlob(t, reg.Repository("a"), []byte("shared"))
		pushBlob(t, reg.Repository("b"), []byte("shared"))
		if _, err := reg.Repository("a").StatBlob(ctx, d); err != nil {
			t.Fatal(err) // now cached
		}
		if err := reg.Repository("a").DeleteBlob(ctx, d); err != nil {
			t.Fatal(err)
		}
		_, err := reg.Repository("a").StatBlob(ctx, d)
		wantErr(t, err, ErrBlobUnknown)
		wantErr(t, reg.Repository("a").DeleteBlob(ctx, d), ErrBlobUnknown)
		if _, err := reg.Repository("b").StatBlob(ctx, d); err != nil {
			t.Fatalf("other repository lost the blob: %v", err)
		}
		if _, ok := tree(t, open())[blobDataPath(d)]; !ok {
			t.Fatal("global data deleted")
		}
	})
}

func TestDeletesDisabledByDefault(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(inmemoryBackend().new(t), Options{})
	repo := reg.Repository("a")
	d := pushBlob(t, repo, []byte("x"))
	img := newImage(t, "del")
	img.push(t, repo, "v1")
	wantErr(t, repo.DeleteBlob(ctx, d), ErrDeleteDisabled)
	wantErr(t, repo.DeleteManifest(ctx, img.digest), ErrDeleteDisabled)
	wantErr(t, repo.DeleteTag(ctx, "v1"), ErrDeleteDisabled)
	if _, err := repo.StatBlob(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.GetManifest(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
}

func TestMountBlob(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := newRegistry(open, Options{})
		content := []byte("mount me")
		d := pushBlob(t, reg.Repository("src"), content)
		from := func(repos ...string) MountSource { return MountSource{Repositories: repos} }
		tests := []struct {
			name, repo string
			src        MountSource
			d          digest.Digest
			want       error
		}{
			{"from a repository that links it", "dst1", from("src"), d, nil},
			{"from the second of several", "dst5", from("dst4", "src"), d, nil},
			{"from anywhere", "dst2", MountSource{Any: true}, d, nil},
			{"from nowhere", "dst3", MountSource{}, d, ErrBlobUnknown},
			{"from a repository without it", "dst3", from("dst4"), d, ErrBlobUnknown},
			{"from an invalid name", "dst3", from("../src"), d, ErrBlobUnknown},
			{"unknown everywhere", "dst3", MountSource{Any: true}, digest.FromString("nowhere"), ErrBlobUnknown},
			{"malformed digest", "dst3", from("src"), "sha256:xyz", ErrDigestInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				desc, err := reg.Repository(tt.repo).MountBlob(ctx, tt.src, tt.d)
				if tt.want != nil {
					wantErr(t, err, tt.want)
					if _, err := reg.Repository(tt.repo).StatBlob(ctx, d); err == nil {
						t.Fatal("blob linked after a failed mount")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if desc.Size != int64(len(content)) || desc.Digest != d {
					t.Fatalf("MountBlob = %+v", desc)
				}
				// Another instance sees the link: it is in storage.
				b, err := newRegistry(open, Options{}).Repository(tt.repo).OpenBlob(ctx, d)
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, b); !bytes.Equal(got, content) {
					t.Fatalf("content %q", got)
				}
			})
		}
	})
}

func TestInvalidNamesNeverReachTheDriver(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(inmemoryBackend().new(t), Options{})
	for _, name := range []string{"", "../x", "a//b", "A", "_layers", "a/_manifests", "a/../b", "a/"} {
		repo := reg.Repository(name)
		_, err := repo.StatBlob(ctx, digest.FromString("x"))
		wantErr(t, err, ErrNameUnknown)
		_, err = repo.NewUpload(ctx)
		wantErr(t, err, ErrNameUnknown)
		_, _, err = repo.Tags(ctx, 0, "")
		wantErr(t, err, ErrNameUnknown)
	}
	repo := reg.Repository("ok")
	for _, d := range []digest.Digest{"sha256:../../x", "sha256:", "nothing", "sha384:" + digest.Digest(bytesOfHex(96))} {
		_, err := repo.StatBlob(ctx, d)
		if !isErr(err, ErrDigestInvalid) && !isErr(err, ErrUnsupportedDigest) {
			t.Errorf("StatBlob(%q) = %v", d, err)
		}
	}
	for _, ref := range []string{"../x", ".hidden", "a/b", ""} {
		_, err := repo.GetManifest(ctx, ref)
		wantErr(t, err, ErrManifestUnknown)
	}
}

func bytesOfHex(n int) string { return string(bytes.Repeat([]byte("a"), n)) }
