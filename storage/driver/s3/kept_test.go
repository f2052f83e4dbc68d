package s3

import (
	"context"
	"runtime"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

// TestCloseKeepsItsTailWithoutCopying: a closed writer keeps the buffer
// that holds its tail, and the reopened writer goes on in that same
// buffer. Before, Close kept a copy (a fresh megabyte of heap for a
// docker layer) and Reopen copied it back into a new buffer: two copies
// of each layer and most of what a docker push allocated
// (docs/benchmarks.md, "S8b"). The bytes committed are the same.
func TestCloseKeepsItsTailWithoutCopying(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const path = "/up/data"
	data := randomBytes(t, 1<<20+10)
	d := s.driver(t, "", nil)
	w := openWriter(t, d, path, false)
	write(t, w, data[:1<<20])
	first := &(*w.(*writer).buf)[0]

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	// The request itself allocates some kilobytes; a copy of the tail
	// would be a megabyte.
	if n := after.TotalAlloc - before.TotalAlloc; n > 256<<10 {
		t.Errorf("Close allocated %d bytes, want well under the %d of its tail", n, 1<<20)
	}
	k := w.(*writer).kept
	if k == nil || len(k.b) != 1<<20 || &k.b[0] != first {
		t.Fatal("Close did not keep its own buffer as the tail")
	}
	nw, err := driver.Reopen(ctx, d, w, path)
	if err != nil {
		t.Fatal(err)
	}
	if &(*nw.(*writer).buf)[0] != first {
		t.Error("Reopen did not go on in the buffer Close kept")
	}
	write(t, nw, data[1<<20:])
	commitAndCheck(t, s, d, nw, path, data)
}
