package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// An upload request answers once its bytes are stored and writes the
// release of its claim in the background (lease.releaseLater). These tests
// hold that write back, or fail it, through one instance's driver.

func isClaim(p string) bool {
	dir := path.Dir(p)
	if path.Base(dir) == oldLeaseDir {
		dir = path.Dir(dir)
	}
	_, err := strconv.ParseUint(path.Base(p), 10, 64)
	return path.Base(path.Dir(dir)) == "_uploads" && len(path.Base(p)) == 12 && err == nil
}

// heldReleases holds back the rewrites of upload claims (releases) until
// open is closed, or fails them when fail is set; with suffix set, only
// those of the claim whose path ends so. Creates go through.
type heldReleases struct {
	driver.Driver
	suffix string
	open   chan struct{}
	fail   bool
}

func (h *heldReleases) Create(ctx context.Context, p string, b []byte) error {
	return driver.Create(ctx, h.Driver, p, b)
}

func (h *heldReleases) PutContent(ctx context.Context, p string, b []byte) error {
	if isClaim(p) && strings.HasSuffix(p, h.suffix) {
		if h.fail {
			return errors.New("the store failed")
		}
		select {
		case <-h.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return driver.PutContent(ctx, h.Driver, p, b)
}

// claimReads calls read once it has read a claim's content, so that a
// held release lands only after the other instance saw the claim live.
type claimReads struct {
	driver.Driver
	read func()
}

func (c claimReads) Create(ctx context.Context, p string, b []byte) error {
	return driver.Create(ctx, c.Driver, p, b)
}

func (c claimReads) Reader(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	rc, err := c.Driver.Reader(ctx, p, off)
	if err != nil || !isClaim(p) {
		return rc, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	c.read()
	return io.NopCloser(bytes.NewReader(b)), nil
}

// patch writes content to the session id as one request on repo.
func patch(t *testing.T, repo Repository, id string, content []byte) {
	t.Helper()
	ctx := context.Background()
	u, err := repo.ResumeUpload(ctx, id)
	if err != nil {
		t.Fatalf("ResumeUpload: %v", err)
	}
	if _, err := u.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// noSessionLeft fails t when the uploads of repository app left files.
func noSessionLeft(t *testing.T, d driver.Driver) {
	t.Helper()
	if files := hasPrefix(treePaths(tree(t, d)), "/docker/registry/v2/repositories/app/_uploads"); len(files) != 0 {
		t.Fatalf("the session left files: %v", files)
	}
}

// commitSession resumes the session id on repo as one request, commits
// the digest of content, and checks that the blob holds exactly content.
func commitSession(t *testing.T, repo Repository, id string, content []byte) {
	t.Helper()
	ctx := context.Background()
	u, err := repo.ResumeUpload(ctx, id)
	if err != nil {
		t.Fatalf("ResumeUpload: %v", err)
	}
	d := digest.FromBytes(content)
	if _, err := u.Commit(ctx, d); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := readAll(t, mustOpen(t, repo, d)); !bytes.Equal(got, content) {
		t.Fatalf("blob holds %d bytes, not the content", len(got))
	}
}

// TestRequestOnAnotherInstanceWaitsForTheRelease: instance B gets the
// client's next request while A's release of the session is still on its
// way (it lands only once B has read the claim live). B must neither
// answer busy nor report the size before A's request: it waits for the
// release. Before B waited, it answered busy and reported 100 bytes.
func TestRequestOnAnotherInstanceWaitsForTheRelease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		for _, next := range []string{"stat", "patch", "commit", "cancel"} {
			t.Run(next, func(t *testing.T) {
				gate := make(chan struct{})
				var once sync.Once
				a := New(&heldReleases{Driver: open(), open: gate}, Options{}, nil).Repository("app")
				b := New(claimReads{open(), func() { once.Do(func() { close(gate) }) }}, Options{}, nil).Repository("app")
				content := append(bytesOf(100, 'a'), bytesOf(50, 'b')...)
				id := startedUpload(t, a, content[:100])
				patch(t, a, id, content[100:])
				switch next {
				case "stat":
					if size, err := b.StatUpload(ctx, id); err != nil || size != 150 {
						t.Fatalf("StatUpload on B: %d, %v, want 150", size, err)
					}
				case "patch":
					patch(t, b, id, bytesOf(10, 'c'))
					if size, err := a.StatUpload(ctx, id); err != nil || size != 160 {
						t.Fatalf("StatUpload on A after B's PATCH: %d, %v, want 160", size, err)
					}
				case "commit":
					u, err := b.ResumeUpload(ctx, id)
					if err != nil {
						t.Fatalf("ResumeUpload on B: %v", err)
					}
					if u.Size() != 150 {
						t.Fatalf("B resumed at %d bytes, want 150", u.Size())
					}
					if _, err := u.Commit(ctx, digest.FromBytes(content)); err != nil {
						t.Fatalf("Commit on B: %v", err)
					}
				case "cancel":
					u, err := b.ResumeUpload(ctx, id)
					if err != nil {
						t.Fatalf("ResumeUpload on B: %v", err)
					}
					if err := u.Cancel(ctx); err != nil {
						t.Fatal(err)
					}
					_, err = a.StatUpload(ctx, id)
					wantErr(t, err, ErrUploadUnknown)
				}
			})
		}
	})
}

// TestNextRequestHereDoesNotWaitForTheRelease: with every release of
// instance A held back, A's next requests on the session go on (the hold
// and the hint are handed over before the release is written), and A
// reports the size its last request acknowledged. The commit, which
// removes the session, goes once the releases landed, so none of them
// brings a claim back after it.
func TestNextRequestHereDoesNotWaitForTheRelease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		gate := make(chan struct{})
		reg := New(&heldReleases{Driver: open(), open: gate}, Options{}, nil)
		a := reg.Repository("app")
		var content []byte
		for i := range 4 {
			content = append(content, bytesOf(100, byte('a'+i))...)
		}
		id := startedUpload(t, a, content[:100])
		for i := 1; i < 4; i++ {
			patch(t, a, id, content[100*i:100*(i+1)])
			if size, err := a.StatUpload(ctx, id); err != nil || size != int64(100*(i+1)) {
				t.Fatalf("StatUpload after PATCH %d: %d, %v, want %d", i, size, err, 100*(i+1))
			}
		}
		close(gate)
		commitSession(t, a, id, content)
		reg.Drain(ctx)
		noSessionLeft(t, open())
	})
}

// TestFailedReleaseLosesNothing: A's releases fail (as when its instance
// dies right after answering). Its requests still succeed, with the size
// they stored; once its last claim lapsed, B takes the session over
// (forkUpload), finds every acknowledged byte and commits their digest.
// Before, a failed release failed the request that had stored its bytes.
func TestFailedReleaseLosesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term, skew = 500 * time.Millisecond, 100 * time.Millisecond
		opts := Options{UploadLease: term, LeaseSkew: skew}
		a := New(&heldReleases{Driver: open(), fail: true}, opts, nil).Repository("app")
		content := append(append(bytesOf(100, 'a'), bytesOf(50, 'b')...), bytesOf(10, 'c')...)
		id := startedUpload(t, a, content[:100])
		patch(t, a, id, content[100:150])
		patch(t, a, id, content[150:])
		time.Sleep(term + skew + 100*time.Millisecond)
		b := newRegistry(open, opts).Repository("app")
		if size, err := b.StatUpload(ctx, id); err != nil || size != 160 {
			t.Fatalf("StatUpload on B once A's claim lapsed: %d, %v, want 160", size, err)
		}
		commitSession(t, b, id, content)
	})
}

func mustOpen(t *testing.T, repo Repository, d digest.Digest) Blob {
	t.Helper()
	blob, err := repo.OpenBlob(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return blob
}
