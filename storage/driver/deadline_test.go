package driver_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
)

// frozen is a backend that, once frozen, answers nothing: every call, and
// every Read, Write, Close and Commit of what it handed out, waits until
// its context is cancelled, as an SDK call to a stopped server does.
type frozen struct {
	driver.Driver
	on atomic.Bool
}

func (f *frozen) wait(ctx context.Context) error {
	if !f.on.Load() {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *frozen) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	r, err := f.Driver.Reader(ctx, path, offset)
	if err != nil {
		return nil, err
	}
	return frozenReader{r, f, ctx}, nil
}

func (f *frozen) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	w, err := f.Driver.Writer(ctx, path, append)
	if err != nil {
		return nil, err
	}
	return &frozenWriter{w, f, ctx}, nil
}

func (f *frozen) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if err := f.wait(ctx); err != nil {
		return driver.FileInfo{}, err
	}
	return f.Driver.Stat(ctx, path)
}

func (f *frozen) List(ctx context.Context, dir string) ([]string, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	return f.Driver.List(ctx, dir)
}

func (f *frozen) Move(ctx context.Context, src, dst string) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	return f.Driver.Move(ctx, src, dst)
}

func (f *frozen) Delete(ctx context.Context, path string) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	return f.Driver.Delete(ctx, path)
}

type frozenReader struct {
	io.ReadCloser
	f   *frozen
	ctx context.Context
}

func (r frozenReader) Read(p []byte) (int, error) {
	if err := r.f.wait(r.ctx); err != nil {
		return 0, err
	}
	return r.ReadCloser.Read(p)
}

// frozenWriter waits on Writer's context in Write and Close, which take
// none, as the object-store drivers' writers do.
type frozenWriter struct {
	driver.FileWriter
	f   *frozen
	ctx context.Context
}

func (w *frozenWriter) Write(p []byte) (int, error) {
	if err := w.f.wait(w.ctx); err != nil {
		return 0, err
	}
	return w.FileWriter.Write(p)
}

func (w *frozenWriter) Close() error {
	if err := w.f.wait(w.ctx); err != nil {
		return err
	}
	return w.FileWriter.Close()
}

func (w *frozenWriter) Commit(ctx context.Context) error {
	if err := w.f.wait(ctx); err != nil {
		return err
	}
	return w.FileWriter.Commit(ctx)
}

// shortTimeouts are far shorter than answerWithin, the failure signal.
var shortTimeouts = driver.Timeouts{
	Metadata: 50 * time.Millisecond, Read: 50 * time.Millisecond,
	Write: 50 * time.Millisecond, Commit: 50 * time.Millisecond,
}

const answerWithin = 30 * time.Second

// answer runs call and fails the test if it does not return: a call the
// deadline did not stop.
func answer(t *testing.T, call func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- call() }()
	select {
	case err := <-errc:
		return err
	case <-time.After(answerWithin):
		t.Fatal("no answer from a frozen backend: the call has no deadline")
		return nil
	}
}

func newFrozen(t *testing.T) (*frozen, driver.Driver) {
	t.Helper()
	f := &frozen{Driver: inmemory.New()}
	d := driver.WithTimeouts(f, shortTimeouts)
	ctx := context.Background()
	if err := driver.PutContent(ctx, d, "/a/file", []byte("content of a file")); err != nil {
		t.Fatal(err)
	}
	return f, d
}

func TestEveryCallToAFrozenBackendEndsWithErrTimeout(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// before runs while the backend answers; call after it froze.
		before func(d driver.Driver) (call func() error)
	}{
		{"stat", func(d driver.Driver) func() error {
			return func() error { _, err := d.Stat(ctx, "/a/file"); return err }
		}},
		{"list", func(d driver.Driver) func() error {
			return func() error { _, err := d.List(ctx, "/a"); return err }
		}},
		{"move", func(d driver.Driver) func() error { return func() error { return d.Move(ctx, "/a/file", "/b/file") } }},
		{"delete", func(d driver.Driver) func() error { return func() error { return d.Delete(ctx, "/a") } }},
		{"putcontent", func(d driver.Driver) func() error {
			return func() error { return driver.PutContent(ctx, d, "/c", []byte("x")) }
		}},
		{"walk", func(d driver.Driver) func() error {
			return func() error { return driver.Walk(ctx, d, "/", func(driver.FileInfo) error { return nil }) }
		}},
		{"open reader", func(d driver.Driver) func() error {
			return func() error { _, err := d.Reader(ctx, "/a/file", 0); return err }
		}},
		{"open writer", func(d driver.Driver) func() error {
			return func() error { _, err := d.Writer(ctx, "/w", false); return err }
		}},
		{"read", func(d driver.Driver) func() error {
			r, err := d.Reader(ctx, "/a/file", 0)
			if err != nil {
				t.Fatal(err)
			}
			return func() error { _, err := r.Read(make([]byte, 4)); r.Close(); return err }
		}},
		{"write", func(d driver.Driver) func() error {
			w, err := d.Writer(ctx, "/w", false)
			if err != nil {
				t.Fatal(err)
			}
			return func() error { _, err := w.Write([]byte("x")); return err }
		}},
		{"close", func(d driver.Driver) func() error {
			w, err := d.Writer(ctx, "/w", false)
			if err != nil {
				t.Fatal(err)
			}
			return w.Close
		}},
		{"commit", func(d driver.Driver) func() error {
			w, err := d.Writer(ctx, "/w", false)
			if err != nil {
				t.Fatal(err)
			}
			return func() error { return w.Commit(ctx) }
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, d := newFrozen(t)
			call := c.before(d)
			f.on.Store(true)
			err := answer(t, call)
			if !errors.Is(err, driver.ErrTimeout) {
				t.Fatalf("error %v, want ErrTimeout", err)
			}
			var pe *driver.PathError
			if !errors.As(err, &pe) || pe.Driver != "inmemory" {
				t.Fatalf("error %v is not a *PathError naming the driver", err)
			}
			// The backend answers again: nothing in the wrapper stays broken.
			f.on.Store(false)
			if _, err := d.Stat(ctx, "/"); err != nil {
				t.Fatalf("stat after thaw: %v", err)
			}
		})
	}
}

// The time a client takes between two reads or writes is its own: only a
// call the backend holds counts against the deadline.
func TestTimeBetweenCallsIsNotABackendTimeout(t *testing.T) {
	ctx := context.Background()
	_, d := newFrozen(t)
	r, err := d.Reader(ctx, "/a/file", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := d.Writer(ctx, "/w", false)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		time.Sleep(2 * shortTimeouts.Read)
		if _, err := r.Read(make([]byte, 2)); err != nil {
			t.Fatalf("read after a pause: %v", err)
		}
		if _, err := w.Write([]byte("ab")); err != nil {
			t.Fatalf("write after a pause: %v", err)
		}
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// A client that goes away mid-upload must not lose what it sent: the
// writer outlives the cancellation of the context it was opened with, and
// a cancellation is not reported as a backend timeout.
func TestWriterOutlivesCallersCancellation(t *testing.T) {
	_, d := newFrozen(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := d.Writer(ctx, "/w", false)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := w.Write([]byte("sent before the client left")); err != nil {
		t.Fatalf("write after cancel: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close after cancel: %v", err)
	}
	w, err = d.Writer(context.Background(), "/w", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Size(); got != int64(len("sent before the client left")) {
		t.Fatalf("resumed size %d", got)
	}
	_ = w.Cancel(context.Background())

	if _, err := d.Stat(ctx, "/a/file"); err == nil || errors.Is(err, driver.ErrTimeout) {
		t.Fatalf("stat with a cancelled context: %v, want the cancellation, not ErrTimeout", err)
	}
}
