package azure

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/inflight/inflighttest"
)

const mib = 1 << 20

// sizeProxy stands between the driver and Azurite and notes the size of
// every Put Block, and how many were in flight at once: a block waits (up
// to two seconds) for want blocks in all, so that blocks sent together
// are seen together.
type sizeProxy struct {
	url string
	*inflighttest.Sizes
}

func newSizeProxy(t *testing.T, upstream string, want int) *sizeProxy {
	t.Helper()
	p := &sizeProxy{Sizes: inflighttest.NewSizes(2*time.Second, want)}
	p.url = testenv.StoreProxy(t, upstream, false, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == http.MethodPut && r.URL.Query().Get("comp") == "block" {
			p.Note(r.ContentLength)
			p.Enter()
			defer p.Leave()
		}
		next.ServeHTTP(w, r)
	})
	return p
}

func randomData(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{'a', 'z'}).Read(b)
	return b
}

// writeInPieces writes b as the registry copies a body, 256 KiB at a time.
func writeInPieces(t *testing.T, w driver.FileWriter, b []byte) {
	t.Helper()
	for len(b) > 0 {
		n := min(len(b), 256<<10)
		mustWrite(t, w, b[:n])
		b = b[n:]
	}
}

// TestExpectSplitsAChunkIntoBlocksStagedTogether: a 16 MiB chunk
// announced before it is written goes out as four blocks of 4 MiB in
// flight at once (writeconcurrency 4), not as two blocks of 8 MiB, and
// the write resumes after them on another instance and commits exactly.
func TestExpectSplitsAChunkIntoBlocksStagedTogether(t *testing.T) {
	f := newFixture(t)
	cont := f.container(t)
	p := newSizeProxy(t, f.az.ServiceURL, 4)
	via := driver.Params{"serviceurl": p.url}
	const chunk = 16 * mib
	data := randomData(2*chunk + 1000)
	// Through the wrapper, as Berth opens a writer: the hint must get
	// through it.
	d := driver.Wrap(f.driver(t, cont, via))
	w, err := d.Writer(t.Context(), "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	driver.Expect(w, chunk)
	writeInPieces(t, w, data[:chunk])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p.Check(t, "blocks", []int64{chunk / 4, chunk / 4, chunk / 4, chunk / 4}, 4)

	// Another instance resumes after the four blocks; its chunk and the
	// last bytes, announced together, commit.
	w, err = f.driver(t, cont, via).Writer(t.Context(), "/f", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Size(); got != chunk {
		t.Fatalf("resumed Size = %d, want %d", got, chunk)
	}
	driver.Expect(w, int64(len(data)-chunk))
	writeInPieces(t, w, data[chunk:])
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	rest := int64(len(data) - chunk)
	planned := (rest + 3) / 4
	if sizes, _ := p.Take(); !slices.Equal(sizes, []int64{rest - 3*planned, planned, planned, planned}) {
		t.Errorf("second round: blocks of %v bytes, want three of %d and the rest", sizes, planned)
	}
	checkStored(t, f, cont, "f", data)
}

// TestExpectThatLiesStoresTheBytesWritten: the hint is a plan, not a
// promise: fewer or more bytes than announced, over rounds resumed on
// other instances, are stored exactly.
func TestExpectThatLiesStoresTheBytesWritten(t *testing.T) {
	f := newFixture(t)
	for _, tc := range append(inflighttest.HintsThatLie(),
		inflighttest.Rounds{Name: "nothing", Expect: []int64{16 * mib, 16 * mib}, Cuts: []int{0, 0}}) {
		t.Run(tc.Name, func(t *testing.T) {
			cont := f.container(t)
			data := randomData(tc.Cuts[len(tc.Cuts)-1])
			open := func(resume bool) driver.FileWriter {
				w, err := f.driver(t, cont, nil).Writer(t.Context(), "/f", resume)
				if err != nil {
					t.Fatal(err)
				}
				return w
			}
			put := func(w driver.FileWriter, b []byte) { writeInPieces(t, w, b) }
			inflighttest.WriteRounds(t, tc, open, put, data)
			checkStored(t, f, cont, "f", data)
		})
	}
}

// TestExpectKeepsChunksizeForABlobWithManyBlocks: Azure allows 50 000
// blocks in a blob; past splitBlocksBefore, a write goes on in chunksize
// blocks so that the largest blob it can hold stays near what they allow.
// A plan never cuts a block below minPlannedBlock, nor below what the
// buffer already holds, nor above the buffer. (The plan is read from the
// writer: 10 000 real blocks would be 40 GB.)
func TestExpectKeepsChunksizeForABlobWithManyBlocks(t *testing.T) {
	f := newFixture(t)
	d := f.driver(t, f.container(t), nil)
	for _, tc := range []struct {
		name     string
		blocks   int
		buffered int
		expect   int64
		planned  int
		size     int64
	}{
		{"a chunk", 0, 0, 16 * mib, 3, 4 * mib},
		{"a chunk, many blocks", splitBlocksBefore - 1, 0, 16 * mib, 3, 4 * mib},
		{"a chunk, too many blocks", splitBlocksBefore, 0, 16 * mib, 0, 0},
		{"a chunk, near the limit", 45_000, 0, 16 * mib, 0, 0},
		{"under two blocks' minimum", 0, 0, 8*mib - 1, 0, 0},
		{"two blocks' minimum", 0, 0, 8 * mib, 1, 4 * mib},
		{"blocks over a buffer", 0, 0, 33 * mib, 0, 0},
		{"after buffered bytes", 0, 6 * mib, 10 * mib, 1, 8 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fw, err := d.Writer(context.Background(), "/f", false)
			if err != nil {
				t.Fatal(err)
			}
			w := fw.(*writer)
			w.blocks = make([]string, tc.blocks)
			w.buf = w.buf[:tc.buffered]
			w.Expect(tc.expect)
			if w.planned != tc.planned || (tc.planned > 0 && w.planSize != tc.size) {
				t.Errorf("%d planned blocks of %d bytes, want %d of %d", w.planned, w.planSize, tc.planned, tc.size)
			}
			if w.planned > 0 && (w.planSize < minPlannedBlock || w.planSize < int64(tc.buffered) || w.planSize > int64(cap(w.buf))) {
				t.Errorf("planned blocks of %d bytes: under %d, under the %d buffered, or over the buffer", w.planSize, minPlannedBlock, tc.buffered)
			}
			w.blocks, w.buf = nil, w.buf[:0] // staged nowhere: nothing to cancel
			if err := w.Cancel(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestExpectStaysWithinWritememory: a plan cuts blocks, it does not buy
// buffers: with no writememory to spare, the planned blocks are staged
// one at a time in the writer's own buffer, and the bytes are exact.
func TestExpectStaysWithinWritememory(t *testing.T) {
	f := newFixture(t)
	cont := f.container(t)
	p := newSizeProxy(t, f.az.ServiceURL, 2)
	p.Hold = 200 * time.Millisecond
	d := f.driver(t, cont, driver.Params{"serviceurl": p.url, "writememory": 0})
	const chunk = 16 * mib
	data := randomData(chunk)
	w, err := d.Writer(t.Context(), "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	driver.Expect(w, chunk)
	writeInPieces(t, w, data)
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.Check(t, "blocks", []int64{chunk / 4, chunk / 4, chunk / 4, chunk / 4}, 1)
	checkStored(t, f, cont, "f", data)
}
