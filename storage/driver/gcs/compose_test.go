package gcs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
)

// componentHook runs before every component upload d sends; returning a
// response answers it instead of GCS.
type componentHook func(r *http.Request, n int) *http.Response

// hookComponents makes hook see d's component uploads, numbered from 1 in
// the order they are sent.
func hookComponents(d *Driver, hook componentHook) {
	var n atomic.Int32
	next := d.hc.Transport
	d.hc = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Query().Get("uploadType") == "media" && strings.Contains(r.URL.Query().Get("name"), "/parts/") {
			if resp := hook(r, int(n.Add(1))); resp != nil {
				return resp, nil
			}
		}
		return next.RoundTrip(r)
	})}
}

func answer(code int) *http.Response {
	return &http.Response{StatusCode: code, Status: http.StatusText(code), Header: http.Header{},
		Body: io.NopCloser(strings.NewReader(`{"error":{"code":403,"message":"refused by the test"}}`))}
}

// waitFor waits for ch, a bounded time so a broken writer fails the test
// rather than hanging it.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s after 30 s", what)
	}
}

func writeAll(t *testing.T, w driver.FileWriter, data []byte) {
	t.Helper()
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func content(t *testing.T, d *Driver, path string) []byte {
	t.Helper()
	got, err := driver.GetContent(t.Context(), d, path, 1<<30)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return got
}

// TestCompositeWriteKeepsOrderWhenComponentsLandOutOfOrder holds the first
// component until three later ones have landed: the file must still hold
// the bytes in the order written, and nothing else may stay in the bucket.
func TestCompositeWriteKeepsOrderWhenComponentsLandOutOfOrder(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	d := newDriver(t, g, driver.Params{"rootdirectory": root, "writeconcurrency": 4})
	var landed atomic.Int32
	three := make(chan struct{})
	hookComponents(d, func(r *http.Request, n int) *http.Response {
		if n == 1 {
			waitFor(t, three, "three later components")
			return nil
		}
		return nil
	})
	next := d.hc.Transport
	d.hc = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if err == nil && r.URL.Query().Get("uploadType") == "media" && landed.Add(1) == 3 {
			close(three)
		}
		return resp, err
	})}

	data := pattern(9*minChunk + 1234)
	w, err := d.Writer(t.Context(), "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, data)
	if err := w.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := content(t, d, "/f"); !bytes.Equal(got, data) {
		t.Fatalf("committed %d bytes differ from the %d written", len(got), len(data))
	}
	if names := objects(t, d, root+"/"); !slices.Equal(names, []string{d.key("/f")}) {
		t.Fatalf("bucket holds %q after Commit, want only the file", names)
	}
}

// TestCompositeComponentFailurePoisonsWrite refuses the third component:
// the write must fail rather than commit a file without those bytes, and
// Cancel must leave nothing.
func TestCompositeComponentFailurePoisonsWrite(t *testing.T) {
	for _, at := range []string{"Write", "Close", "Commit"} {
		t.Run(at, func(t *testing.T) {
			g := testenv.StartGCS(t)
			root := rootFor(t.Name())
			d := newDriver(t, g, driver.Params{"rootdirectory": root, "writeconcurrency": 2})
			hookComponents(d, func(r *http.Request, n int) *http.Response {
				if n == 3 {
					return answer(http.StatusForbidden)
				}
				return nil
			})
			w, err := d.Writer(t.Context(), "/f", false)
			if err != nil {
				t.Fatal(err)
			}
			// Four full chunks: the third is refused in the background;
			// Write sees it when it sends a later one, Close and Commit
			// when they wait for it.
			data := pattern(4*minChunk + 10)
			var failed error
			if at == "Write" {
				data = pattern(12 * minChunk)
			}
			_, failed = w.Write(data)
			switch {
			case at == "Write" && failed == nil:
				t.Fatal("Write succeeded past a refused component")
			case at == "Close" && failed == nil:
				failed = w.Close()
			case at == "Commit" && failed == nil:
				failed = w.Commit(t.Context())
			}
			if failed == nil {
				t.Fatalf("%s succeeded with a component refused", at)
			}
			if at != "Close" {
				if err := w.Commit(t.Context()); err == nil {
					t.Fatal("Commit succeeded after a component failed")
				}
			}
			if _, err := d.Stat(t.Context(), "/f"); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("Stat after the failure: %v, want ErrNotFound", err)
			}
			cancelLeavesNothing(t, d, w, root)
		})
	}
}

// TestCompositeResumeAfterCrashWithComponentsInFlight: one instance
// writes and closes; a second resumes, sends components and dies without
// Close (one of them still in flight); a third resumes from what the first
// closed on. The file holds the first and third writers' bytes, and the
// dead writer's components are gone once the write commits.
func TestCompositeResumeAfterCrashWithComponentsInFlight(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	params := driver.Params{"rootdirectory": root, "writeconcurrency": 3}
	const path = "/repo/_uploads/u/data"
	first := pattern(2*minChunk + 500)
	writeClose(t, newDriver(t, g, params), path, false, first)

	crashed := newDriver(t, g, params)
	release, held := make(chan struct{}), make(chan struct{})
	var landed sync.WaitGroup
	hookComponents(crashed, func(r *http.Request, n int) *http.Response {
		if n == 3 {
			close(held)
			<-release // in flight when the writer dies
		}
		return nil
	})
	ctx, die := context.WithCancel(t.Context())
	w, err := crashed.Writer(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	landed.Add(1)
	go func() {
		defer landed.Done()
		_, _ = w.Write(bytes.Repeat([]byte{0xEE}, 6*minChunk))
	}()
	waitFor(t, held, "the dead writer's third component")
	// The dead writer's first two components land beside the first
	// writer's two.
	for i := 0; len(objects(t, crashed, crashed.partsDir(path))) < 2+2; i++ {
		if i == 300 {
			t.Fatalf("components in the bucket at the crash: %q, want the first writer's and two of the dead one's", objects(t, crashed, crashed.partsDir(path)))
		}
		time.Sleep(100 * time.Millisecond)
	}

	d := newDriver(t, g, params)
	r, err := d.Writer(t.Context(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != int64(len(first)) {
		t.Fatalf("resumed Size = %d, want %d (the dead writer's bytes were never closed)", r.Size(), len(first))
	}
	rest := pattern(3*minChunk + 77)
	writeAll(t, r, rest)
	if err := r.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got, want := content(t, d, path), append(slices.Clone(first), rest...); !bytes.Equal(got, want) {
		t.Fatalf("committed %d bytes differ from the %d closed and resumed", len(got), len(want))
	}
	if names := objects(t, d, root+"/"); !slices.Equal(names, []string{d.key(path)}) {
		t.Fatalf("bucket holds %q after Commit, want only the file", names)
	}
	// The dead writer's last component lands late; deleting the upload's
	// directory, as the registry does after a commit, removes it.
	close(release)
	die()
	landed.Wait()
	if err := d.Delete(t.Context(), "/repo/_uploads/u"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if names := objects(t, d, root+"/"); len(names) != 0 {
		t.Fatalf("bucket holds %q after deleting the upload", names)
	}
}

// TestCompositeCancelWithComponentsInFlightLeavesNothing cancels a resumed
// write while one of its components is still being sent.
func TestCompositeCancelWithComponentsInFlightLeavesNothing(t *testing.T) {
	d, root := closedElsewhere(t, 4, "/a/data", pattern(3*minChunk+9))
	held, release := make(chan struct{}), make(chan struct{})
	hookComponents(d, func(r *http.Request, n int) *http.Response {
		if n == 2 {
			close(held)
			<-release // lands once Cancel has begun
		}
		return nil
	})
	w, err := d.Writer(t.Context(), "/a/data", true)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, pattern(3*minChunk))
	waitFor(t, held, "a component in flight")
	go close(release)
	cancelLeavesNothing(t, d, w, root)
	if _, err := d.Writer(t.Context(), "/a/data", true); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("resume after Cancel: %v, want ErrNotFound", err)
	}
}

// TestDeleteRemovesComponentsOfAWriteThatNeverClosed: a writer that dies
// before its first Close leaves components but no sidecar.
func TestDeleteRemovesComponentsOfAWriteThatNeverClosed(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	d := newDriver(t, g, driver.Params{"rootdirectory": root, "writeconcurrency": 2, "writememory": 0})
	w, err := d.Writer(t.Context(), "/up/1/data", false)
	if err != nil {
		t.Fatal(err)
	}
	// With one buffer, each chunk is sent once the next byte comes, and
	// waited for: the first two have landed, the third is in the buffer.
	writeAll(t, w, pattern(3*minChunk))
	if names := objects(t, d, root+"/"); len(names) < 2 {
		t.Fatalf("bucket holds %q, want the landed components", names)
	}
	if err := d.Delete(t.Context(), "/up"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Delete of a directory with no file: %v, want ErrNotFound", err)
	}
	if names := objects(t, d, root+"/"); len(names) != 0 {
		t.Fatalf("bucket holds %q after Delete", names)
	}
}

// TestWriteConcurrencyBoundsComponentsInFlight holds every component until
// the test has seen how many are in flight at once.
func TestWriteConcurrencyBoundsComponentsInFlight(t *testing.T) {
	tests := []struct {
		name   string
		params driver.Params
		want   int // components in flight at most, and at least once
	}{
		{"default", nil, defaultWriteConcurrency},
		{"writeconcurrency 2", driver.Params{"writeconcurrency": 2}, 2},
		{"writememory for the own buffer and one more", driver.Params{"writememory": 2 * minChunk}, 2},
		{"writememory 0", driver.Params{"writememory": 0}, 1},
		{"as REGISTRY_STORAGE_GCS_* strings", driver.Params{"writeconcurrency": "3", "writememory": "0"}, 1},
		{"writeconcurrency 3 as a string", driver.Params{"writeconcurrency": "3"}, 3},
		{"writeconcurrency 1: a resumable session", driver.Params{"writeconcurrency": 1}, 0},
	}
	g := testenv.StartGCS(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := driver.Params{"rootdirectory": rootFor(t.Name())}
			for k, v := range tt.params {
				params[k] = v
			}
			d := newDriver(t, g, params)
			var mu sync.Mutex
			in, peak := 0, 0
			full := make(chan struct{}, 1)
			hookComponents(d, func(r *http.Request, n int) *http.Response {
				mu.Lock()
				in++
				peak = max(peak, in)
				if in == tt.want {
					select {
					case full <- struct{}{}:
					default:
					}
				}
				mu.Unlock()
				// Hold each until as many as allowed are in flight, so
				// the peak is reached whenever the writer allows it.
				select {
				case <-full:
					full <- struct{}{}
				case <-time.After(2 * time.Second):
				}
				mu.Lock()
				in--
				mu.Unlock()
				return nil
			})
			w, err := d.Writer(t.Context(), "/f", false)
			if err != nil {
				t.Fatal(err)
			}
			data := pattern(8*minChunk + 3)
			writeAll(t, w, data)
			if err := w.Commit(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := content(t, d, "/f"); !bytes.Equal(got, data) {
				t.Fatal("committed bytes differ from those written")
			}
			if peak != tt.want {
				t.Fatalf("%d components in flight at most, want %d", peak, tt.want)
			}
		})
	}
}

// TestCloseSplitsItsLastChunkAcrossComponents: a request that ends with a
// buffer of several 256 KiB sends it as several components at once; the
// file still holds the bytes in order.
func TestCloseSplitsItsLastChunkAcrossComponents(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	params := driver.Params{"rootdirectory": root, "chunksize": 4 * minChunk, "writeconcurrency": 3}
	const path = "/up/data"
	data := pattern(2*4*minChunk + 3*minChunk + 5 + 7*minChunk + 11)
	first := data[:2*4*minChunk+3*minChunk+5]
	writeClose(t, newDriver(t, g, params), path, false, first)
	d := newDriver(t, g, params)
	st, err := d.readSidecar(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	// Two full chunks, then the last 3 × 256 KiB + 5 bytes in three.
	if len(st.parts) != 2+3 || st.stored != int64(len(first)) || len(st.tail) != 0 {
		t.Fatalf("after Close: %d components, %d bytes stored, tail %d; want 5, %d, 0", len(st.parts), st.stored, len(st.tail), len(first))
	}
	w, err := d.Writer(t.Context(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, data[len(first):])
	if err := w.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := content(t, d, path); !bytes.Equal(got, data) {
		t.Fatalf("committed %d bytes differ from the %d written", len(got), len(data))
	}
	if names := objects(t, d, root+"/"); !slices.Equal(names, []string{d.key(path)}) {
		t.Fatalf("bucket holds %q after Commit, want only the file", names)
	}
}

// TestWritersGiveBackWriteMemory: a writer holds a unit of writememory
// once it wrote, and gives it back at Close and Commit, in a resumable
// session as with components: a unit kept by a closed writer would leave
// every later upload one chunk at a time.
func TestWritersGiveBackWriteMemory(t *testing.T) {
	g := testenv.StartGCS(t)
	for _, tc := range []struct {
		name   string
		params driver.Params
	}{
		{"components", driver.Params{"writeconcurrency": 2, "writememory": 2 * minChunk}},
		{"a resumable session", driver.Params{"writeconcurrency": 1, "writememory": 2 * minChunk}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := driver.Params{"rootdirectory": rootFor(t.Name()), "chunksize": minChunk}
			for k, v := range tc.params {
				params[k] = v
			}
			d := newDriver(t, g, params)
			free := func(when string) {
				t.Helper()
				if !d.memory.TryAcquire(2) {
					t.Fatalf("%s: a unit of writememory is still held", when)
				}
				d.memory.Release(2)
			}
			w, err := d.Writer(t.Context(), "/a/data", false)
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, pattern(minChunk/2))
			if d.memory.TryAcquire(2) {
				t.Fatal("a writer that wrote holds no unit of writememory")
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			free("after Close")
			if w, err = d.Writer(t.Context(), "/a/data", true); err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, pattern(minChunk/2))
			if err := w.Commit(t.Context()); err != nil {
				t.Fatal(err)
			}
			free("after Commit")
		})
	}
}
