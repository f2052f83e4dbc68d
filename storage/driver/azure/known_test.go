package azure

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
)

// requestProxy stands between the driver and Azurite and notes every
// request.
func requestProxy(t *testing.T, upstream string) (string, *testenv.Requests) {
	t.Helper()
	var reqs testenv.Requests
	url := testenv.StoreProxy(t, upstream, false, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		reqs.Note(r)
		next.ServeHTTP(w, r)
	})
	return url, &reqs
}

// TestReopenGoesOnWithoutGetBlockList: a writer reopened after a Close
// that succeeded sends no request before its first block (Writer(path,
// true) sends a Get Block List, one per PATCH of a chunked push), takes
// the next block index, and the committed blob is exactly what was
// written: a tail block, a chunk cut into planned blocks, nothing at all,
// and the last bytes with the commit.
func TestReopenGoesOnWithoutGetBlockList(t *testing.T) {
	f := newFixture(t)
	cont := f.container(t)
	url, reqs := requestProxy(t, f.az.ServiceURL)
	ctx := t.Context()
	const chunk = 16 * mib
	data := randomData(2*chunk + 3000)
	// Through the wrapper, as Berth opens a writer: Reopen must get
	// through it.
	d := driver.Wrap(f.driver(t, cont, driver.Params{"serviceurl": url}))
	w, err := d.Writer(ctx, "/up/data", false)
	if err != nil {
		t.Fatal(err)
	}
	prev := 0
	for _, c := range []struct {
		end   int
		label string
	}{
		{1000, "a short block"},
		{1000 + chunk, "a planned chunk"},
		{1000 + chunk, "nothing"},
		{1000 + 2*chunk, "another chunk"},
	} {
		driver.Expect(w, int64(c.end-prev))
		writeInPieces(t, w, data[prev:c.end])
		if err := w.Close(); err != nil {
			t.Fatalf("%s: Close: %v", c.label, err)
		}
		reqs.Take()
		nw, err := driver.Reopen(ctx, d, w, "/up/data")
		if err != nil {
			t.Fatalf("after %s: Reopen: %v", c.label, err)
		}
		if got := reqs.Take(); len(got) > 0 {
			t.Errorf("after %s: Reopen sent %q, want no request", c.label, got)
		}
		if got := nw.Size(); got != int64(c.end) {
			t.Fatalf("after %s: reopened Size = %d, want %d", c.label, got, c.end)
		}
		w, prev = nw, c.end
	}
	writeInPieces(t, w, data[prev:])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs.Take() {
		if strings.Contains(r, "comp=blocklist") && strings.HasPrefix(r, http.MethodGet) {
			t.Errorf("the write sent %q: no writer of it read the block list", r)
		}
	}
	checkStored(t, f, cont, "up/data", data)
}

// TestReopenOnlyAfterAClose: a writer is reopened from memory once, and
// only after a Close that succeeded; otherwise driver.Reopen resumes from
// the store, as Writer(path, true) does. A closed empty write reopens too,
// and a reopened writer's Cancel leaves nothing.
func TestReopenOnlyAfterAClose(t *testing.T) {
	f := newFixture(t)
	cont := f.container(t)
	ctx := t.Context()
	d := f.driver(t, cont, nil)
	w, err := d.Writer(ctx, "/up/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.(*writer).Reopen(ctx); !errors.Is(err, driver.ErrUnsupported) {
		t.Fatalf("Reopen of an open writer = %v, want ErrUnsupported", err)
	}
	// Closed before its first byte: the marker block makes it exist.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	first, err := driver.Reopen(ctx, d, w, "/up/data")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, first, []byte("hello"))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// The same writer again: the one reopened may have written since, so
	// the write resumes from the store and sees its bytes.
	if _, err := w.(*writer).Reopen(ctx); !errors.Is(err, driver.ErrUnsupported) {
		t.Fatalf("second Reopen = %v, want ErrUnsupported", err)
	}
	second, err := driver.Reopen(ctx, d, w, "/up/data")
	if err != nil {
		t.Fatal(err)
	}
	if got := second.Size(); got != 5 {
		t.Fatalf("resumed from the store: Size = %d, want 5", got)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := driver.Reopen(ctx, d, second, "/up/data")
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if names := blobNames(t, f, cont); len(names) != 0 {
		t.Errorf("blobs after Cancel of a reopened writer: %v, want none", names)
	}
}

// TestNewWriterSendsNothingBeforeItsFirstBlock: a write started with
// driver.NewWriter, at a path where none was ever started, sends no Get
// Block List (Writer(path, false) sends one to find a write to discard):
// its first request is its first block, and the blob is exact.
func TestNewWriterSendsNothingBeforeItsFirstBlock(t *testing.T) {
	f := newFixture(t)
	cont := f.container(t)
	url, reqs := requestProxy(t, f.az.ServiceURL)
	ctx := t.Context()
	data := randomData(5000)
	d := driver.Wrap(f.driver(t, cont, driver.Params{"serviceurl": url}))
	reqs.Take()
	w, err := driver.NewWriter(ctx, d, "/up/data")
	if err != nil {
		t.Fatal(err)
	}
	if got := reqs.Take(); len(got) > 0 {
		t.Errorf("NewWriter sent %q, want no request", got)
	}
	mustWrite(t, w, data[:1000])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reqs.Take(); len(got) != 1 || !strings.HasPrefix(got[0], http.MethodPut+" ") || !strings.HasSuffix(got[0], "&comp=block") {
		t.Errorf("NewWriter, Write and Close sent %q, want one Put Block", got)
	}
	w, err = driver.Reopen(ctx, d, w, "/up/data")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, data[1000:])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, cont, "up/data", data)
}
