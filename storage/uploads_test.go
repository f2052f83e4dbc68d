package storage

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// TestChunkedUploadResumesOnAnotherInstance writes each chunk through a
// different Registry on the same backend, as requests landing on
// different instances do, and checks the blob is committed without the
// digest state ever being lost.
func TestChunkedUploadResumesOnAnotherInstance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		chunks := [][]byte{bytesOf(1000, 'a'), bytesOf(70000, 'b'), []byte("tail")}
		all := bytes.Join(chunks, nil)
		want := digest.FromBytes(all)

		u, err := newRegistry(open, Options{}).Repository("app").NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id := u.ID()
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		for i, c := range chunks {
			// A new Registry per request: nothing is shared but the backend.
			repo := newRegistry(open, Options{}).Repository("app")
			u, err := repo.ResumeUpload(ctx, id)
			if err != nil {
				t.Fatalf("chunk %d: ResumeUpload: %v", i, err)
			}
			if u.(*upload).h == nil {
				t.Fatalf("chunk %d: digest state lost on resume", i)
			}
			if _, err := u.(*upload).ReadFrom(bytes.NewReader(c)); err != nil {
				t.Fatal(err)
			}
			if i < len(chunks)-1 {
				if err := u.Close(ctx); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if u.Size() != int64(len(all)) {
				t.Fatalf("Size = %d, want %d", u.Size(), len(all))
			}
			desc, err := u.Commit(ctx, want)
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if desc.Digest != want || desc.Size != int64(len(all)) {
				t.Fatalf("Commit = %+v", desc)
			}
		}
		repo := newRegistry(open, Options{}).Repository("app")
		b, err := repo.OpenBlob(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, b); !bytes.Equal(got, all) {
			t.Fatalf("blob content differs (%d bytes, want %d)", len(got), len(all))
		}
		noSessionLeft(t, open())
	})
}

// TestDigestMismatchStoresNothing walks the whole tree after a failed
// commit: no blob, no link, no upload remains.
func TestDigestMismatchStoresNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resume bool   // commit after a resume, when the state comes from storage
		want   string // algorithm of the claimed digest
	}{
		{"streamed", false, "sha256"},
		{"resumed", true, "sha256"},
		{"rehashed sha512", false, "sha512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
				ctx := context.Background()
				repo := newRegistry(open, Options{}).Repository("app")
				u, err := repo.NewUpload(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := u.Write([]byte("actual content")); err != nil {
					t.Fatal(err)
				}
				if tc.resume {
					if err := u.Close(ctx); err != nil {
						t.Fatal(err)
					}
					if u, err = repo.ResumeUpload(ctx, u.ID()); err != nil {
						t.Fatal(err)
					}
				}
				claimed := digest.Algorithm(tc.want).FromBytes([]byte("other content"))
				_, err = u.Commit(ctx, claimed)
				wantErr(t, err, ErrDigestInvalid)
				if files := contentTree(t, open()); len(files) != 0 {
					t.Fatalf("files left after mismatch: %q", treePaths(files))
				}
				if _, err := repo.ResumeUpload(ctx, u.ID()); err == nil {
					t.Fatal("upload still resumable after mismatch")
				}
			})
		})
	}
}

func TestZeroLengthBlob(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		repo := newRegistry(open, Options{}).Repository("app")
		d := pushBlob(t, repo, nil)
		if d != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
			t.Fatalf("digest %s", d)
		}
		desc, err := repo.StatBlob(ctx, d)
		if err != nil || desc.Size != 0 {
			t.Fatalf("StatBlob = %+v, %v", desc, err)
		}
		b, err := repo.OpenBlob(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, b); len(got) != 0 {
			t.Fatalf("read %d bytes", len(got))
		}
		// Also through a resumed, never-written upload.
		u, err := repo.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		id := u.ID()
		_, err = newRegistry(open, Options{}).Repository("other").ResumeUpload(ctx, id)
		wantErr(t, err, ErrUploadUnknown) // uploads belong to their repository
		u, err = newRegistry(open, Options{}).Repository("app").ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Commit(ctx, d); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSHA512Blob pushes a sha512 blob both ways: choosing the algorithm
// up front (hashed while streaming), and not (read back at commit).
func TestSHA512Blob(t *testing.T) {
	content := []byte("a blob addressed by sha512")
	sum := sha512.Sum512(content)
	d := digest.NewDigestFromBytes(digest.SHA512, sum[:])
	for _, setAlg := range []bool{true, false} {
		name := map[bool]string{true: "SetAlgorithm", false: "rehash"}[setAlg]
		t.Run(name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
				ctx := context.Background()
				reg := newRegistry(open, Options{})
				repo := reg.Repository("app")
				u, err := repo.NewUpload(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if setAlg {
					if err := u.(AlgorithmSetter).SetAlgorithm(digest.SHA512); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := u.Write(content[:5]); err != nil {
					t.Fatal(err)
				}
				if err := u.Close(ctx); err != nil {
					t.Fatal(err)
				}
				u, err = newRegistry(open, Options{}).Repository("app").ResumeUpload(ctx, u.ID())
				if err != nil {
					t.Fatal(err)
				}
				if got := u.(*upload).alg; setAlg && got != digest.SHA512 {
					t.Fatalf("resumed with %s state, want sha512", got)
				}
				if _, err := u.Write(content[5:]); err != nil {
					t.Fatal(err)
				}
				if _, err := u.Commit(ctx, d); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				want := "/docker/registry/v2/blobs/sha512/" + d.Encoded()[:2] + "/" + d.Encoded() + "/data"
				files := tree(t, open())
				if files[want] != string(content) {
					t.Fatalf("blob not at %s: %q", want, treePaths(files))
				}
				link := "/docker/registry/v2/repositories/app/_layers/sha512/" + d.Encoded() + "/link"
				if files[link] != string(d) {
					t.Fatalf("link %s = %q", link, files[link])
				}
				b, err := repo.OpenBlob(ctx, d)
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, b); !bytes.Equal(got, content) {
					t.Fatalf("content %q", got)
				}
			})
		})
	}
}

func TestSetAlgorithmRules(t *testing.T) {
	ctx := context.Background()
	repo := newRegistry(inmemoryBackend().new(t), Options{}).Repository("app")
	u, err := repo.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, u.(AlgorithmSetter).SetAlgorithm("md5"), ErrUnsupportedDigest)
	if _, err := u.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, u.(AlgorithmSetter).SetAlgorithm(digest.SHA512), ErrUploadInvalid)
	if err := u.(AlgorithmSetter).SetAlgorithm(digest.SHA256); err != nil {
		t.Fatalf("choosing the current algorithm: %v", err)
	}
}

func TestResumeUploadRejects(t *testing.T) {
	ctx := context.Background()
	repo := newRegistry(inmemoryBackend().new(t), Options{}).Repository("app")
	for _, id := range []string{
		"", "..", "../../../blobs", "not-a-uuid", "01a2056f-c917-7627-8c98-228dcd44f22/",
		"01A2056F-C917-7627-8C98-228DCD44F220", "01a2056f-c917-7627-8c98-228dcd44f220", // unknown
	} {
		_, err := repo.ResumeUpload(ctx, id)
		if err == nil {
			t.Errorf("ResumeUpload(%q) succeeded", id)
			continue
		}
		wantErr(t, err, ErrUploadUnknown)
	}
}

// TestResumeWithoutDigestStateRehashes covers an upload whose digest state
// is missing (an instance died between writing data and state): the upload
// still commits, by reading the data back.
func TestResumeWithoutDigestStateRehashes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		repo := newRegistry(open, Options{}).Repository("app")
		u, err := repo.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write([]byte("first ")); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// The release vouches for the data's size but carries no
		// digest state, as a Berth that kept the state in a file of its
		// own released, and the file is gone.
		drv := driver.Wrap(open())
		claim := leaseClaimPath(uploadLeaseDir("app", u.ID()), 1)
		b, err := driver.GetContent(ctx, drv, claim, 4096)
		if err != nil {
			t.Fatal(err)
		}
		var rec leaseRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.Digest == nil {
			t.Fatalf("release %s holds no digest state (%v)", b, err)
		}
		rec.Alg, rec.Digest = "", nil
		b, _ = json.Marshal(rec)
		if err := driver.PutContent(ctx, drv, claim, b); err != nil {
			t.Fatal(err)
		}
		// Another instance: this one remembers the state it saved.
		u, err = newRegistry(open, Options{}).Repository("app").ResumeUpload(ctx, u.ID())
		if err != nil {
			t.Fatal(err)
		}
		if u.(*upload).h != nil {
			t.Fatal("digest state restored from nowhere")
		}
		if _, err := u.Write([]byte("second")); err != nil {
			t.Fatal(err)
		}
		if _, err := u.Commit(ctx, digest.FromString("first second")); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	})
}

func TestCancelUploadRemovesIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		repo := newRegistry(open, Options{}).Repository("app")
		u, err := repo.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		u, err = repo.ResumeUpload(ctx, u.ID())
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		if files := contentTree(t, open()); len(files) != 0 {
			t.Fatalf("files left after cancel: %q", treePaths(files))
		}
		_, err = repo.ResumeUpload(ctx, u.ID())
		wantErr(t, err, ErrUploadUnknown)
	})
}

func TestCommitRejectsMalformedDigestAndKeepsUpload(t *testing.T) {
	ctx := context.Background()
	repo := newRegistry(inmemoryBackend().new(t), Options{}).Repository("app")
	u, err := repo.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	_, err = u.Commit(ctx, "sha256:nothex")
	wantErr(t, err, ErrDigestInvalid)
	_, err = u.Commit(ctx, digest.FromString("data"))
	wantErr(t, err, ErrUploadInvalid) // this upload object is done
	u, err = repo.ResumeUpload(ctx, u.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, digest.Digest("md5:d41d8cd98f00b204e9800998ecf8427e")); !isErr(err, ErrUnsupportedDigest) {
		t.Fatalf("md5 digest: %v", err)
	}
	u, err = repo.ResumeUpload(ctx, u.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, digest.FromString("data")); err != nil {
		t.Fatal(err)
	}
}

// TestCommitOfExistingBlobKeepsOneCopy pushes the same content twice.
func TestCommitOfExistingBlobKeepsOneCopy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		reg := newRegistry(open, Options{})
		pushBlob(t, reg.Repository("a"), []byte("same"))
		pushBlob(t, reg.Repository("b"), []byte("same"))
		files := tree(t, open())
		if n := len(hasPrefix(treePaths(files), "/docker/registry/v2/blobs/")); n != 1 {
			t.Fatalf("%d blob files", n)
		}
		if n := len(hasPrefix(treePaths(files), "/docker/registry/v2/repositories/b/_uploads")); n != 0 {
			t.Fatalf("upload left behind")
		}
	})
}

// TestUploadHasOneRequestAtATime: while a request holds an upload, another
// (through the same instance, or another instance on the same store) gets
// ErrUploadBusy with the size the session had, writes nothing, and can go
// on once the first ended; the digest state the first saved is trusted.
func TestUploadHasOneRequestAtATime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		here := newRegistry(open, Options{}).Repository("app")
		u, err := here.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write(bytesOf(100, 'a')); err != nil {
			t.Fatal(err)
		}
		id := u.ID()
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		first, err := here.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := first.Write(bytesOf(50, 'b')); err != nil {
			t.Fatal(err)
		}
		elsewhere := newRegistry(open, Options{}).Repository("app")
		for name, repo := range map[string]Repository{"same instance": here, "another instance": elsewhere} {
			_, err := repo.ResumeUpload(ctx, id)
			var busy *BusyError
			if !errors.As(err, &busy) || !errors.Is(err, ErrUploadBusy) || busy.Size != 100 {
				t.Fatalf("%s: ResumeUpload while another request holds it: %v, want ErrUploadBusy at 100", name, err)
			}
			if size, err := repo.StatUpload(ctx, id); err != nil || size != 100 {
				t.Errorf("%s: StatUpload while held: %d, %v, want the 100 bytes of the last request that ended", name, size, err)
			}
		}
		if err := first.Close(ctx); err != nil {
			t.Fatal(err)
		}
		next, err := elsewhere.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatalf("ResumeUpload after the holder ended: %v", err)
		}
		if next.Size() != 150 || next.(*upload).h == nil {
			t.Fatalf("resumed at %d (digest state trusted: %v), want 150, trusted", next.Size(), next.(*upload).h != nil)
		}
		want := digest.FromBytes(append(bytesOf(100, 'a'), bytesOf(50, 'b')...))
		if _, err := next.Commit(ctx, want); err != nil {
			t.Fatal(err)
		}
		if _, err := here.ResumeUpload(ctx, id); !errors.Is(err, ErrUploadUnknown) {
			t.Fatalf("ResumeUpload after the commit: %v, want ErrUploadUnknown", err)
		}
	})
}

// TestStaleLeaseHintFallsBackToTheLease: an instance that remembers the
// claim it released, after another instance wrote to the session since,
// must read the lease and resume where the other left it.
func TestStaleLeaseHintFallsBackToTheLease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		a := newRegistry(open, Options{}).Repository("app")
		b := newRegistry(open, Options{}).Repository("app")
		u, err := a.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id := u.ID()
		write := func(repo Repository, content []byte) {
			t.Helper()
			u, err := repo.ResumeUpload(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Write(content); err != nil {
				t.Fatal(err)
			}
			if err := u.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := u.Write(bytesOf(10, 'a')); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		write(a, bytesOf(20, 'b')) // a remembers the claim it released
		write(b, bytesOf(30, 'c')) // b moves the session on
		u, err = a.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if u.Size() != 60 || u.(*upload).h == nil {
			t.Fatalf("resumed at %d (digest state trusted: %v), want 60, trusted", u.Size(), u.(*upload).h != nil)
		}
		want := digest.FromBytes(bytes.Join([][]byte{bytesOf(10, 'a'), bytesOf(20, 'b'), bytesOf(30, 'c')}, nil))
		if _, err := u.Commit(ctx, want); err != nil {
			t.Fatal(err)
		}
	})
}

// countingWrites counts the writes of upload data a driver is asked to
// open (n) and, when writes is set, the Write calls they get.
type countingWrites struct {
	driver.Driver
	n      *atomic.Int32
	writes *atomic.Int32
}

func (c countingWrites) Create(ctx context.Context, p string, b []byte) error {
	return driver.Create(ctx, c.Driver, p, b)
}

func (c countingWrites) Writer(ctx context.Context, p string, append bool) (driver.FileWriter, error) {
	data := strings.HasSuffix(p, "/data") && strings.Contains(p, "/_uploads/")
	if data {
		c.n.Add(1)
	}
	w, err := c.Driver.Writer(ctx, p, append)
	if err != nil || !data || c.writes == nil {
		return w, err
	}
	return countedWriter{FileWriter: w, n: c.writes}, nil
}

// TestStartingAnUploadOpensNoWrite: a POST without a body (NewUpload,
// then Close with nothing written) keeps no write, so it opens none. It
// opened one and dropped it again, which on a filesystem made the data
// file and the session's directories and removed them in the same
// request, before startedat made the directories again. The session's
// first bytes open the write, on this instance or another.
func TestStartingAnUploadOpensNoWrite(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		var n atomic.Int32
		repo := New(countingWrites{Driver: open(), n: &n}, Options{}, nil).Repository("app")
		u, err := repo.NewUpload(ctx)
		if err != nil {
			t.Fatalf("NewUpload: %v", err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got := n.Load(); got != 0 {
			t.Errorf("starting an upload opened %d writes, want none", got)
		}
		content := bytesOf(1000, 'p')
		r, err := repo.ResumeUpload(ctx, u.ID())
		if err != nil {
			t.Fatalf("ResumeUpload: %v", err)
		}
		if r.Size() != 0 {
			t.Fatalf("a started upload holds %d bytes, want 0", r.Size())
		}
		if _, err := r.Write(content); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if _, err := r.Commit(ctx, digest.FromBytes(content)); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if got := n.Load(); got != 1 {
			t.Errorf("the push opened %d writes, want 1", got)
		}
		b, err := repo.OpenBlob(ctx, digest.FromBytes(content))
		if err != nil {
			t.Fatalf("OpenBlob after the push: %v", err)
		}
		defer b.Close()
		if got, err := io.ReadAll(b); err != nil || !bytes.Equal(got, content) {
			t.Fatalf("the pushed blob reads %d bytes, %v", len(got), err)
		}
	})
}
