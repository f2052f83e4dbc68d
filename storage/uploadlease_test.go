package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
)

// deadRequest starts an upload of 100 bytes, then has a request on
// another instance write 10 more and die: nothing renews or releases its
// claim from then on. It returns the session and the dead request's upload.
func deadRequest(t *testing.T, open func() driver.Driver, opts Options) (string, Upload) {
	t.Helper()
	id := startedUpload(t, newRegistry(open, opts).Repository("app"), bytesOf(100, 'a'))
	dead, err := newRegistry(open, opts).Repository("app").ResumeUpload(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dead.Write(bytesOf(10, 'b')); err != nil {
		t.Fatal(err)
	}
	dead.(*upload).lease.stopKeepAlive()
	return id, dead
}

// TestUploadLeaseTermIsTheConfiguredOne: a request whose instance died
// (its lease neither renewed nor released) blocks the session for
// Options.UploadLease plus Options.LeaseSkew, then another instance takes
// it over and does not trust the digest state, since no one knows what
// the dead request wrote. An instance with the default term and skew
// still honours the dead claim at that point.
func TestUploadLeaseTermIsTheConfiguredOne(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term, skew = time.Second, 200 * time.Millisecond
		opts := Options{UploadLease: term, LeaseSkew: skew}
		id, _ := deadRequest(t, open, opts)

		other := newRegistry(open, opts).Repository("app")
		if _, err := other.ResumeUpload(ctx, id); !errors.Is(err, ErrUploadBusy) {
			t.Fatalf("ResumeUpload while the dead claim lives: %v, want ErrUploadBusy", err)
		}
		time.Sleep(term + skew + 100*time.Millisecond)
		if _, err := newRegistry(open, Options{}).Repository("app").ResumeUpload(ctx, id); !errors.Is(err, ErrUploadBusy) {
			t.Fatalf("ResumeUpload with the default skew, %s after the claim: %v, want ErrUploadBusy", term+skew, err)
		}
		// What the client resumes from: the bytes the dead request wrote
		// count, though no claim records them.
		if size, err := other.StatUpload(ctx, id); err != nil || size != 110 {
			t.Fatalf("StatUpload past the term and the skew: %d, %v, want the 110 bytes stored", size, err)
		}
		u, err := other.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatalf("ResumeUpload past the term and the skew: %v", err)
		}
		if u.Size() != 110 || u.(*upload).h != nil {
			t.Fatalf("took over at %d bytes (digest state trusted: %v), want 110, not trusted", u.Size(), u.(*upload).h != nil)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// startedUpload starts an upload in repo holding content and returns its id.
func startedUpload(t *testing.T, repo Repository, content []byte) string {
	t.Helper()
	ctx := context.Background()
	u, err := repo.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return u.ID()
}

// failingResumes fails resuming any unfinished write.
type failingResumes struct{ driver.Driver }

func (f failingResumes) Create(ctx context.Context, p string, b []byte) error {
	return driver.Create(ctx, f.Driver, p, b)
}

func (f failingResumes) Writer(ctx context.Context, p string, append bool) (driver.FileWriter, error) {
	if append {
		return nil, errors.New("the store failed")
	}
	return f.Driver.Writer(ctx, p, append)
}

// TestStatAfterAFailedResumeReportsTheStoredBytes: a request that took
// the session but failed before it could use it (the store failed reading
// the unfinished write) leaves the session as it was: GET reports the bytes
// stored, for the client to resume from, not an empty session.
func TestStatAfterAFailedResumeReportsTheStoredBytes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		id := startedUpload(t, newRegistry(open, Options{}).Repository("app"), bytesOf(100, 'a'))
		if _, err := New(failingResumes{open()}, Options{}, nil).Repository("app").ResumeUpload(ctx, id); err == nil {
			t.Fatal("ResumeUpload with the store failing: no error")
		}
		if size, err := newRegistry(open, Options{}).Repository("app").StatUpload(ctx, id); err != nil || size != 100 {
			t.Fatalf("StatUpload after a failed resume: %d, %v, want 100", size, err)
		}
	})
}

// TestLeaseRenewalsEndWithTheRequest: a request that ends without
// releasing its lease (a panic past its cleanup) must not hold the lease
// for as long as the process runs; it lapses.
func TestLeaseRenewalsEndWithTheRequest(t *testing.T) {
	drv := driver.Wrap(inmemory.New())
	ctx, cancel := context.WithCancel(context.Background())
	const term = 400 * time.Millisecond
	l, _, err := acquireLease(ctx, drv, "/lease/test", term, 100*time.Millisecond, false)
	if err != nil {
		t.Fatal(err)
	}
	l.keepAlive(ctx, term/8)
	time.Sleep(term) // renewed meanwhile
	if err := l.valid(); err != nil {
		t.Fatalf("a live request's lease: %v", err)
	}
	cancel()
	time.Sleep(2 * term)
	if err := l.valid(); err == nil {
		t.Fatal("the lease of a request that ended is still renewed")
	}
	l.stopKeepAlive()
}

// TestTakeOverOfASharedSessionKeepsEveryByte: with sessions left in
// Distribution's form (DistributionUploads), a request that dies mid-write
// is taken over as any other: the bytes it wrote count, its digest state
// is not trusted, and what is committed is exactly the bytes written, in
// order, whatever the dead request's writer (still open, on the file
// system one file with the session's data) does afterwards.
func TestTakeOverOfASharedSessionKeepsEveryByte(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term, skew = time.Second, 200 * time.Millisecond
		opts := Options{UploadLease: term, LeaseSkew: skew, DistributionUploads: true}
		id, dead := deadRequest(t, open, opts)
		time.Sleep(term + skew + 100*time.Millisecond)

		u, err := newRegistry(open, opts).Repository("app").ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if u.Size() != 110 || u.(*upload).h != nil {
			t.Fatalf("took over at %d bytes (digest state trusted: %v), want 110, not trusted", u.Size(), u.(*upload).h != nil)
		}
		if _, err := u.Write(bytesOf(5, 'c')); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// The dead request's writer wakes up and writes on.
		_, _ = dead.(*upload).fw.Write(bytesOf(7, 'x'))
		_ = dead.(*upload).fw.Close()

		u, err = newRegistry(open, opts).Repository("app").ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := append(append(bytesOf(100, 'a'), bytesOf(10, 'b')...), bytesOf(5, 'c')...)
		if desc, err := u.Commit(ctx, digest.FromBytes(want)); err != nil || desc.Size != int64(len(want)) {
			t.Fatalf("Commit = %+v, %v, want the %d bytes written, in order", desc, err, len(want))
		}
	})
}

// TestOldLayoutSessionsKeepTheirClaimsThere: a session started before
// claims moved up into its directory holds them in lease/. An instance
// of today honours a live claim there (one of an instance not yet
// upgraded), resumes from the release there, and makes its own claim
// there too, where that instance looks.
func TestOldLayoutSessionsKeepTheirClaimsThere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		drv := driver.Wrap(open())
		id := startedUpload(t, newRegistry(open, Options{}).Repository("app"), bytesOf(100, 'a'))
		session := uploadDir("app", id)
		old := session + "/" + oldLeaseDir
		released, err := driver.GetContent(ctx, drv, leaseClaimPath(session, 1), 4096)
		if err != nil {
			t.Fatal(err)
		}
		if err := driver.PutContent(ctx, drv, leaseClaimPath(old, 1), released); err != nil {
			t.Fatal(err)
		}
		if err := drv.Delete(ctx, leaseClaimPath(session, 1)); err != nil {
			t.Fatal(err)
		}
		live := mustJSON(t, leaseRecord{Owner: "old", Expires: time.Now().Add(time.Minute)})
		if err := driver.Create(ctx, drv, leaseClaimPath(old, 2), live); err != nil {
			t.Fatal(err)
		}

		repo := newRegistry(open, Options{}).Repository("app")
		_, err = repo.ResumeUpload(ctx, id)
		var busy *BusyError
		if !errors.As(err, &busy) || busy.Size != 100 {
			t.Fatalf("ResumeUpload while an old instance's claim lives: %v, want busy at the 100 bytes released before it", err)
		}
		done := mustJSON(t, leaseRecord{Owner: "old", Expires: time.Now().Add(time.Minute), Released: true, Size: 100})
		if err := driver.PutContent(ctx, drv, leaseClaimPath(old, 2), done); err != nil {
			t.Fatal(err)
		}
		if size, err := repo.StatUpload(ctx, id); err != nil || size != 100 {
			t.Fatalf("StatUpload after the old instance released: %d, %v, want 100", size, err)
		}
		u, err := repo.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatalf("ResumeUpload after the old instance released: %v", err)
		}
		if _, err := drv.Stat(ctx, leaseClaimPath(old, 3)); err != nil {
			t.Fatalf("the claim after the old instance's is not where it looks: %v", err)
		}
		if _, err := drv.Stat(ctx, leaseClaimPath(session, 3)); !isNotFound(err) {
			t.Fatalf("a claim in the session's directory beside the old ones: %v", err)
		}
		if _, err := u.Write(bytesOf(10, 'b')); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// The next request here claims after the release it remembers,
		// without reading the claims: in the same place.
		if u, err = repo.ResumeUpload(ctx, id); err != nil {
			t.Fatalf("ResumeUpload after a request here: %v", err)
		}
		if _, err := drv.Stat(ctx, leaseClaimPath(old, 4)); err != nil {
			t.Fatalf("the claim after this instance's release is not where the old instance looks: %v", err)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(append(bytesOf(100, 'a'), bytesOf(10, 'b')...))); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		noSessionLeft(t, open())
	})
}
