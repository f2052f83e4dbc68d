package storage

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// frozen is an instance's view of the store that can be frozen: while it
// is, every call it makes (a write already past its lease check, a
// renewal) waits, as a stopped process or a hung mount would, and goes
// through once it thaws.
type frozen struct {
	driver.Driver
	mu     sync.Mutex
	thawed chan struct{} // nil unless frozen; closed on thaw
}

func (f *frozen) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.thawed = make(chan struct{})
}

func (f *frozen) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.thawed)
	f.thawed = nil
}

// wait blocks while the store is frozen.
func (f *frozen) wait() {
	f.mu.Lock()
	c := f.thawed
	f.mu.Unlock()
	if c != nil {
		<-c
	}
}

func (f *frozen) Writer(ctx context.Context, p string, app bool) (driver.FileWriter, error) {
	f.wait()
	fw, err := f.Driver.Writer(ctx, p, app)
	if err != nil {
		return nil, err
	}
	return &frozenWriter{FileWriter: fw, f: f}, nil
}

func (f *frozen) Create(ctx context.Context, p string, b []byte) error {
	f.wait()
	return driver.Create(ctx, f.Driver, p, b)
}

func (f *frozen) Move(ctx context.Context, src, dst string) error {
	f.wait()
	return f.Driver.Move(ctx, src, dst)
}

func (f *frozen) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	f.wait()
	return f.Driver.Stat(ctx, p)
}

type frozenWriter struct {
	driver.FileWriter
	f *frozen
}

func (w *frozenWriter) Write(p []byte) (int, error) {
	w.f.wait()
	return w.FileWriter.Write(p)
}

func (w *frozenWriter) Commit(ctx context.Context) error {
	w.f.wait()
	return w.FileWriter.Commit(ctx)
}

// TestWriteFrozenPastItsLeaseChangesNoBlob: a request that passed its
// lease check and then froze inside the write (a stopped process, a hung
// disk) loses the session to another instance, which completes the push.
// When the frozen write goes through, it must land nowhere that matters:
// not in the blob the other instance published, not in its session.
func TestWriteFrozenPastItsLeaseChangesNoBlob(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term, skew = time.Second, 200 * time.Millisecond
		opts := Options{UploadLease: term, LeaseSkew: skew}
		head := append(bytesOf(100, 'a'), bytesOf(10, 'b')...)
		id := startedUpload(t, newRegistry(open, opts).Repository("app"), head[:100])

		store := &frozen{Driver: open()}
		stale, err := New(store, opts, nil).Repository("app").ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stale.Write(head[100:]); err != nil {
			t.Fatal(err)
		}
		store.freeze()
		wrote := make(chan error, 1)
		go func() {
			_, err := stale.Write(bytesOf(50, 'x'))
			wrote <- err
		}()
		time.Sleep(term + skew + 200*time.Millisecond)

		// Another instance takes the session over and completes the push.
		other := newRegistry(open, opts).Repository("app")
		u, err := other.ResumeUpload(ctx, id)
		if err != nil {
			store.thaw()
			t.Fatalf("ResumeUpload past the frozen request's term: %v", err)
		}
		content := append(head, bytesOf(20, 'c')...)
		if _, err := u.Write(content[len(head):]); err != nil {
			t.Fatal(err)
		}
		want := digest.FromBytes(content)
		if _, err := u.Commit(ctx, want); err != nil {
			store.thaw()
			t.Fatalf("Commit by the instance that took over: %v", err)
		}

		store.thaw()
		<-wrote
		_ = stale.Close(ctx)

		b, err := other.OpenBlob(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, b); !bytes.Equal(got, content) {
			t.Fatalf("the blob %s serves %d bytes (digest %s) after the frozen write went through, want its %d", want, len(got), digest.FromBytes(got), len(content))
		}
	})
}

// TestCommitFrozenPastItsLeasePublishesNothingWrong: a request that passed
// its commit's lease check and then froze (before its data reached the
// blob's place) loses the session to another instance, which goes on
// writing. When the frozen commit goes through, the blob under its digest
// must be its bytes or nothing, never the other request's file.
func TestCommitFrozenPastItsLeasePublishesNothingWrong(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term, skew = time.Second, 200 * time.Millisecond
		opts := Options{UploadLease: term, LeaseSkew: skew}
		head := append(bytesOf(100, 'a'), bytesOf(10, 'b')...)
		id := startedUpload(t, newRegistry(open, opts).Repository("app"), head[:100])

		store := &frozen{Driver: open()}
		staleRepo := New(store, opts, nil).Repository("app")
		stale, err := staleRepo.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stale.Write(head[100:]); err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(head)
		store.freeze()
		committed := make(chan error, 1)
		go func() {
			_, err := stale.Commit(ctx, d)
			committed <- err
		}()
		time.Sleep(term + skew + 200*time.Millisecond)

		u, err := newRegistry(open, opts).Repository("app").ResumeUpload(ctx, id)
		if err != nil {
			store.thaw()
			t.Fatalf("ResumeUpload past the frozen commit's term: %v", err)
		}
		if _, err := u.Write(bytesOf(20, 'c')); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		store.thaw()
		err = <-committed
		t.Logf("the thawed commit: %v", err)

		b, err := newRegistry(open, opts).Repository("app").OpenBlob(ctx, d)
		if err != nil {
			if !errors.Is(err, ErrBlobUnknown) {
				t.Fatal(err)
			}
			return
		}
		if got := readAll(t, b); !bytes.Equal(got, head) {
			t.Fatalf("the blob %s serves %d bytes (digest %s) after the frozen commit went through, want its %d", d, len(got), digest.FromBytes(got), len(head))
		}
	})
}

// TestStaleRequestLeavesTheSessionAlone: a request that stalled past its
// lease, then fails (its commit or its write refused), is cancelled by
// the API as any failed commit is. The session is another request's by
// then: its bytes must stay for that request to commit.
func TestStaleRequestLeavesTheSessionAlone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term, skew = time.Second, 200 * time.Millisecond
		opts := Options{UploadLease: term, LeaseSkew: skew}
		id := startedUpload(t, newRegistry(open, opts).Repository("app"), bytesOf(100, 'a'))

		store := &frozen{Driver: open()}
		stale, err := New(store, opts, nil).Repository("app").ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		store.freeze()
		time.Sleep(term + skew + 200*time.Millisecond)
		other := newRegistry(open, opts).Repository("app")
		u, err := other.ResumeUpload(ctx, id)
		if err != nil {
			store.thaw()
			t.Fatal(err)
		}
		if _, err := u.Write(bytesOf(20, 'c')); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		store.thaw()

		if _, err := stale.Commit(ctx, digest.FromBytes(bytesOf(100, 'a'))); !errors.Is(err, ErrUploadInvalid) {
			t.Fatalf("commit of the stale request: %v, want ErrUploadInvalid", err)
		}
		_ = stale.Cancel(ctx)

		content := append(bytesOf(100, 'a'), bytesOf(20, 'c')...)
		u, err = other.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatalf("the session after the stale request was cancelled: %v", err)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(content)); err != nil {
			t.Fatalf("commit of the request holding the session: %v", err)
		}
	})
}

// TestRenewalLandingAfterTheLapseRevivesNothing: a renewal sent while the
// lease held and held up in the store until after it lapsed (a hung
// write) must not revive the lease: another instance may read the lapsed
// claim and take the session before the late renewal lands.
func TestRenewalLandingAfterTheLapseRevivesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term, skew = time.Second, 100 * time.Millisecond
		store := &frozen{Driver: open()}
		l, _, err := acquireLease(ctx, driver.Wrap(store), "/docker/registry/v2/_berth/test/lease", term, skew, false)
		if err != nil {
			t.Fatal(err)
		}
		// Sent late in the term, the renewal hangs past the lapse.
		time.Sleep(term * 8 / 10)
		store.freeze()
		renewed := make(chan error, 1)
		go func() { renewed <- l.renew(ctx) }()
		time.Sleep(term*2/10 + skew + 100*time.Millisecond)
		store.thaw()
		err = <-renewed
		if err == nil || l.valid() == nil {
			t.Fatalf("a renewal that landed after the lease lapsed: %v, lease valid: %v; want it lost", err, l.valid())
		}
	})
}
