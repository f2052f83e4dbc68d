package s3

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

func TestCloseOnAPartBoundaryWritesNoState(t *testing.T) {
	s := newStore(t)
	rec := newRecorder(t, s.m.Endpoint)
	const path = "/up/data"
	data := randomBytes(t, 2*minChunkSize+5)
	d := rec.driver(t, s)
	state := stateDir + "up/data"

	// A tail of 1000 bytes is stored aside in the state object.
	w := openWriter(t, d, path, false)
	write(t, w, data[:1000])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rec.Take()
	// The next writer fills a part with it and ends on the boundary:
	// the state object, behind the parts now, is left as it is.
	w = openWriter(t, rec.driver(t, s), path, true)
	write(t, w, data[1000:minChunkSize])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count(rec.Take(), http.MethodPut, state); n != 0 {
		t.Errorf("Close on a part boundary wrote the state object %d times, want none", n)
	}
	// Once more with nothing written, then a part and a tail.
	prev := minChunkSize
	for _, cut := range []int{minChunkSize, 2 * minChunkSize, len(data)} {
		w = openWriter(t, rec.driver(t, s), path, true)
		if got := w.Size(); got != int64(prev) {
			t.Fatalf("resumed Size = %d, want %d", got, prev)
		}
		write(t, w, data[prev:cut])
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		prev = cut
	}
	w = openWriter(t, rec.driver(t, s), path, true)
	if got := w.Size(); got != int64(len(data)) {
		t.Fatalf("resumed Size = %d, want %d", got, len(data))
	}
	commitAndCheck(t, s, d, w, path, data)
}

func TestReopenGoesOnWithoutListing(t *testing.T) {
	s := newStore(t)
	rec := newRecorder(t, s.m.Endpoint)
	ctx := context.Background()
	const path = "/up/data"
	data := randomBytes(t, 3*minChunkSize+10)
	d := driver.Wrap(rec.driver(t, s)) // as Berth opens it: Reopen goes through the wrapper

	w := openWriter(t, d, path, false)
	cuts := []struct {
		end   int
		label string
	}{
		{1000, "a tail in the state object"},
		{2 * minChunkSize, "a part boundary"},
		{2*minChunkSize + 7, "a short tail after parts"},
		{3*minChunkSize + 3, "a part and a tail"},
	}
	prev := 0
	for _, c := range cuts {
		write(t, w, data[prev:c.end])
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		rec.Take()
		nw, err := driver.Reopen(ctx, d, w, path)
		if err != nil {
			t.Fatalf("after %s: Reopen: %v", c.label, err)
		}
		// Nor is the tail read back: the closed writer kept it.
		if reqs := rec.Take(); len(reqs) > 0 {
			t.Errorf("after %s: Reopen sent %v, want no request", c.label, reqs)
		}
		if got := nw.Size(); got != int64(c.end) {
			t.Fatalf("after %s: reopened Size = %d, want %d", c.label, got, c.end)
		}
		w, prev = nw, c.end
	}
	write(t, w, data[prev:])
	commitAndCheck(t, s, d, w, path, data)
}

// TestReopenReadsATailNoLongerKept: once a closed writer no longer keeps
// its tail (expired, or over the budget), Reopen reads it from the state
// object.
func TestReopenReadsATailNoLongerKept(t *testing.T) {
	s := newStore(t)
	rec := newRecorder(t, s.m.Endpoint)
	ctx := context.Background()
	const path = "/up/data"
	data := randomBytes(t, minChunkSize+10)
	d := rec.driver(t, s)
	w := openWriter(t, d, path, false)
	write(t, w, data[:1000])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.(*writer).kept.take() == nil {
		t.Fatal("Close kept no tail")
	}
	rec.Take()
	nw, err := driver.Reopen(ctx, d, w, path)
	if err != nil {
		t.Fatal(err)
	}
	if reqs := rec.Take(); len(reqs) != 1 || count(reqs, http.MethodGet, stateDir) != 1 {
		t.Errorf("Reopen sent %v, want one GET of the state object", reqs)
	}
	write(t, nw, data[1000:])
	commitAndCheck(t, s, d, nw, path, data)
}

func TestReopenTwiceResumesFromTheStore(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const path = "/up/data"
	data := randomBytes(t, minChunkSize+10)
	d := driver.Wrap(s.driver(t, "", nil))
	w := openWriter(t, d, path, false)
	write(t, w, data[:100])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// A writer reopened once is not reopened again from memory: the one
	// reopened may have written since.
	first, err := driver.Reopen(ctx, d, w, path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, first, data[100:])
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := driver.Reopen(ctx, d, w, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := second.Size(); got != int64(len(data)) {
		t.Fatalf("second Reopen of the same writer: Size = %d, want %d (what the store holds)", got, len(data))
	}
	commitAndCheck(t, s, d, second, path, data)
}

// commitAndCheck commits w and checks that path holds data and that the
// write left nothing else in the bucket.
func commitAndCheck(t *testing.T, s *store, d driver.Driver, w driver.FileWriter, path string, data []byte) {
	t.Helper()
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d, path); string(got) != string(data) {
		t.Fatalf("committed %d bytes differ from the %d written", len(got), len(data))
	}
	if keys := s.keys(t); len(keys) != 1 {
		t.Errorf("keys after Commit: %v, want only the file", keys)
	}
}

// TestStatFileIsOneHead: StatFile describes a file with one HEAD, and
// answers a directory, or nothing, as not found without listing.
func TestStatFileIsOneHead(t *testing.T) {
	s := newStore(t)
	rec := newRecorder(t, s.m.Endpoint)
	ctx := context.Background()
	d := driver.Wrap(rec.driver(t, s))
	if err := driver.PutContent(ctx, d, "/dir/file", []byte("12345")); err != nil {
		t.Fatal(err)
	}
	rec.Take()
	fi, err := driver.StatFile(ctx, d, "/dir/file")
	if err != nil || fi.Size != 5 || fi.IsDir {
		t.Fatalf("StatFile of a file = %+v, %v", fi, err)
	}
	for _, p := range []string{"/dir", "/dir/none"} {
		if _, err := driver.StatFile(ctx, d, p); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("StatFile(%s) = %v, want ErrNotFound", p, err)
		}
	}
	if reqs := rec.Take(); len(reqs) != 3 || count(reqs, http.MethodHead, "") != 3 {
		t.Errorf("three StatFiles sent %v, want three HEADs", reqs)
	}
}

// TestNewWriterSendsNothingUntilItStores: a write started at a fresh path
// sends no request to start, nor to be cancelled before it stored
// anything; cancelled after a Close, its state object goes.
func TestNewWriterSendsNothingUntilItStores(t *testing.T) {
	s := newStore(t)
	rec := newRecorder(t, s.m.Endpoint)
	ctx := context.Background()
	d := driver.Wrap(rec.driver(t, s))
	w, err := driver.NewWriter(ctx, d, "/fresh/data")
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, []byte("not stored yet"))
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if reqs := rec.Take(); len(reqs) != 0 {
		t.Errorf("NewWriter, Write and Cancel sent %v, want nothing", reqs)
	}
	w, err = driver.NewWriter(ctx, d, "/fresh/other")
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, []byte("stored"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = driver.Reopen(ctx, d, w, "/fresh/other")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := s.keys(t); len(keys) != 0 {
		t.Errorf("keys after Cancel: %v, want none", keys)
	}
}
