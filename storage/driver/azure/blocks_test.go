package azure

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/inflight/inflighttest"
)

// blockProxy stands between the driver and Azurite and records how many
// Put Block requests were in flight at once. A block waits (up to hold)
// for a second one, so a writer able to stage two at once is seen doing it.
type blockProxy struct {
	url string
	*inflighttest.Gauge
}

func newBlockProxy(t *testing.T, upstream string) *blockProxy {
	t.Helper()
	p := &blockProxy{Gauge: inflighttest.NewGauge(500 * time.Millisecond)}
	p.url = testenv.StoreProxy(t, upstream, false, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == http.MethodPut && r.URL.Query().Get("comp") == "block" {
			p.Enter()
			defer p.Leave()
		}
		next.ServeHTTP(w, r)
	})
	return p
}

func readAllFrom(t *testing.T, d *Driver, path string) []byte {
	t.Helper()
	r, err := d.Reader(t.Context(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteConcurrencyBoundsBlocksInFlight(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name     string
		extra    driver.Params
		min, max int
	}{
		{"default", nil, 2, defaultWriteConcurrency},
		{"writeconcurrency 1", driver.Params{"writeconcurrency": 1}, 1, 1},
		{"writememory 0", driver.Params{"writememory": 0}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cont := f.container(t)
			p := newBlockProxy(t, f.az.ServiceURL)
			extra := driver.Params{"chunksize": 1024, "serviceurl": p.url}
			for k, v := range tc.extra {
				extra[k] = v
			}
			d := f.driver(t, cont, extra)
			data := bytes.Repeat([]byte("0123456789abcdef"), 64*6+3)
			w, err := d.Writer(t.Context(), "/f", false)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w, data)
			if err := w.Commit(t.Context()); err != nil {
				t.Fatal(err)
			}
			checkStored(t, f, cont, "f", data)
			if m := p.Most(); m < tc.min || m > tc.max {
				t.Errorf("%d blocks in flight at most, want between %d and %d", m, tc.min, tc.max)
			}
		})
	}
}

// TestResumeAfterCrashWithBlocksInFlight: a writer died with blocks 2 and
// 3 in flight, of which only 3 was staged. The next writer resumes after
// blocks 0 and 1, and the committed file is exactly what was written.
func TestResumeAfterCrashWithBlocksInFlight(t *testing.T) {
	f := newFixture(t)
	cont := f.container(t)
	ctx := t.Context()
	extra := driver.Params{"chunksize": 1024}
	data := bytes.Repeat([]byte("0123456789abcdef"), 64*5)
	w, err := f.driver(t, cont, extra).Writer(ctx, "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, data[:2048])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	started := w.(*writer).started
	junk := bytes.Repeat([]byte{0xEE}, 1024)
	id := blockID{kind: kindData, started: started, index: 3}.String()
	if _, err := f.az.ContainerClient(cont).NewBlockBlobClient("f").StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(junk)), nil); err != nil {
		t.Fatal(err)
	}
	w, err = f.driver(t, cont, extra).Writer(ctx, "/f", true)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if w.Size() != 2048 {
		t.Fatalf("resumed Size = %d, want 2048", w.Size())
	}
	mustWrite(t, w, data[2048:])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, cont, "f", data)
}

// TestCancelWithBlocksInFlightLeavesNothing: Cancel while blocks are
// still being staged leaves no blob, committed or not.
func TestCancelWithBlocksInFlightLeavesNothing(t *testing.T) {
	f := newFixture(t)
	cont := f.container(t)
	ctx := context.Background()
	p := newBlockProxy(t, f.az.ServiceURL)
	p.Hold = 2 * time.Second
	d := f.driver(t, cont, driver.Params{"chunksize": 1024, "serviceurl": p.url})
	w, err := d.Writer(ctx, "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, make([]byte, 3*1024+10))
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if names := blobNames(t, f, cont); len(names) != 0 {
		t.Errorf("blobs left after Cancel: %v", names)
	}
	if _, err := f.driver(t, cont, nil).Writer(ctx, "/f", true); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("resume after Cancel: err = %v, want ErrNotFound", err)
	}
}
