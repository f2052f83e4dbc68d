package storage

import (
	"bytes"
	"context"
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
