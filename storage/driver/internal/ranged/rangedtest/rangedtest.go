// Package rangedtest checks, for the drivers' tests, a driver's parallel
// ranged reads (package ranged) against its real object store: bytes in
// order from any offset, a range the store refuses ending the read with an
// error, an object replaced mid-read failing the read, and readconcurrency
// and readmemory taking effect.
package rangedtest

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/ranged"
)

// Target is the driver under test and the store it reads.
type Target struct {
	// Chunk is the range size (chunksize) of the drivers New returns; at
	// least 8 KiB, so that the 1000 bytes of the small-range check stay
	// under the quarter chunk a read goes before fetching ahead.
	Chunk int64
	// Upstream is the store's endpoint, which a proxy forwards to.
	Upstream string
	// KeepHost makes the proxy pass on the Host header the driver sent
	// (SigV4 signs it) rather than name the store's (fake-gcs-server
	// takes another host for a bucket's).
	KeepHost bool
	// New returns a driver on the test's store with extra keys added;
	// with endpoint set, it reaches the store through that URL (a
	// proxy's, standing in for Upstream) instead.
	New func(t *testing.T, endpoint string, extra driver.Params) driver.Driver
}

// Run runs every check on tg as subtests.
func Run(t *testing.T, tg Target) {
	t.Run("InOrderFromAnyOffset", func(t *testing.T) { inOrder(t, tg) })
	t.Run("ErrorMidStreamEndsTheRead", func(t *testing.T) { errorMidStream(t, tg) })
	t.Run("ReplacedMidReadFails", func(t *testing.T) { replaced(t, tg) })
	t.Run("SmallRangeCostsOneGET", func(t *testing.T) { smallRange(t, tg) })
	t.Run("ConcurrencyAndMemoryTakeEffect", func(t *testing.T) { concurrencyAndMemory(t, tg) })
	t.Run("ConcurrencyBehindABufferedRange", func(t *testing.T) { behindBuffered(t, tg) })
}

// proxy stands between a driver and its store, counts the ranged GETs and
// refuses those starting at failAt (-1: none).
type proxy struct {
	url    string
	ranged atomic.Int32
	failAt int64
}

func newProxy(t *testing.T, tg Target, failAt int64) *proxy {
	t.Helper()
	p := &proxy{failAt: failAt}
	p.url = testenv.StoreProxy(t, tg.Upstream, tg.KeepHost, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if start, ok := rangeStart(r); ok && r.Method == http.MethodGet {
			p.ranged.Add(1)
			if start == p.failAt {
				refuse(w)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
	return p
}

// rangeStart is where the range a request asks for starts: S3 and GCS
// send Range, Azure x-ms-range.
func rangeStart(r *http.Request) (int64, bool) {
	rg := r.Header.Get("X-Ms-Range")
	if rg == "" {
		rg = r.Header.Get("Range")
	}
	s, ok := strings.CutPrefix(rg, "bytes=")
	if !ok {
		return 0, false
	}
	s, _, _ = strings.Cut(s, "-")
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// refuse answers as the three stores answer a request they deny: 403
// with an XML error, which no SDK retries.
func refuse(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>refused by the test</Message></Error>`))
}

func randomBytes(t *testing.T, n int64) []byte {
	t.Helper()
	var seed [32]byte
	copy(seed[:], t.Name())
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

func put(t *testing.T, tg Target, path string, data []byte) {
	t.Helper()
	if err := driver.PutContent(context.Background(), tg.New(t, "", nil), path, data); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, d driver.Driver, path string, off int64) io.ReadCloser {
	t.Helper()
	r, err := d.Reader(context.Background(), path, off)
	if err != nil {
		t.Fatalf("Reader at %d: %v", off, err)
	}
	return r
}

// inOrder: from offsets on and off range boundaries, the read is the
// file's bytes after the offset, one ranged GET a chunk.
func inOrder(t *testing.T, tg Target) {
	c := tg.Chunk
	data := randomBytes(t, 5*c+1234)
	size := int64(len(data))
	put(t, tg, "/inorder", data)
	for _, off := range []int64{0, 1, c, 3*c + 7, size - 1, size} {
		p := newProxy(t, tg, -1)
		r := open(t, tg.New(t, p.url, nil), "/inorder", off)
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if !bytes.Equal(got, data[off:]) {
			t.Fatalf("read at %d: %d bytes differing from the %d stored after it", off, len(got), size-off)
		}
		if want := (size - off + c - 1) / c; off < size && int64(p.ranged.Load()) != want {
			t.Errorf("read at %d: %d ranged GETs, want %d", off, p.ranged.Load(), want)
		}
	}
}

// errorMidStream: a range the store refuses ends the read with an error
// right where that range starts; what came before is the file's.
func errorMidStream(t *testing.T, tg Target) {
	data := randomBytes(t, 5*tg.Chunk+99)
	put(t, tg, "/midstream", data)
	failAt := 3 * tg.Chunk
	p := newProxy(t, tg, failAt)
	r := open(t, tg.New(t, p.url, nil), "/midstream", 0)
	defer r.Close()
	got, err := io.ReadAll(r)
	if err == nil {
		t.Fatalf("read all %d bytes with the range at %d refused", len(got), failAt)
	}
	if int64(len(got)) != failAt || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("read %d bytes before the error (equal to the file's: %v), want the %d before the refused range",
			len(got), bytes.Equal(got, data[:min(len(got), len(data))]), failAt)
	}
}

// replaced: ranges are pinned to the version the first response came
// from, so a file replaced during a read fails the read rather than
// mixing the two files' bytes.
func replaced(t *testing.T, tg Target) {
	old := randomBytes(t, 6*tg.Chunk)
	put(t, tg, "/replaced", old)
	r := open(t, tg.New(t, "", driver.Params{"readconcurrency": 2}), "/replaced", 0)
	defer r.Close()
	put(t, tg, "/replaced", bytes.Repeat([]byte{0x5A}, len(old)))
	got, err := io.ReadAll(r)
	if !bytes.Equal(got, old[:len(got)]) {
		t.Fatalf("read %d bytes that are not the first file's", len(got))
	}
	if err == nil {
		t.Fatalf("read the whole file (%d bytes) after it was replaced; want an error", len(got))
	}
}

// smallRange: a client reading a few bytes of a big file (a Range
// request) does not make the reader fetch chunks ahead.
func smallRange(t *testing.T, tg Target) {
	data := randomBytes(t, 4*tg.Chunk)
	put(t, tg, "/small", data)
	p := newProxy(t, tg, -1)
	r := open(t, tg.New(t, p.url, nil), "/small", 100)
	got := make([]byte, 1000)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if st, _ := ranged.Inspect(r); st.Queued != 0 {
		t.Errorf("%d ranges fetched ahead after reading 1000 bytes, want none", st.Queued)
	}
	r.Close()
	if !bytes.Equal(got, data[100:1100]) {
		t.Fatal("read bytes differ from the file's")
	}
	if n := p.ranged.Load(); n != 1 {
		t.Errorf("%d ranged GETs for 1000 bytes, want 1", n)
	}
}

// concurrencyAndMemory: readconcurrency 1 reads with one GET; readmemory
// 0 leaves nothing fetched ahead; the default fetches readconcurrency-1
// ranges ahead while the first response streams.
func concurrencyAndMemory(t *testing.T, tg Target) {
	data := randomBytes(t, (ranged.DefaultConcurrency+2)*tg.Chunk)
	put(t, tg, "/memory", data)
	for _, tc := range []struct {
		name   string
		params driver.Params
		ranged bool // the reader fetches ranges
		ahead  int  // ranges queued after reading half the first chunk
	}{
		{"default", nil, true, ranged.DefaultConcurrency - 1},
		{"readconcurrency 1", driver.Params{"readconcurrency": 1}, false, 0},
		{"readmemory 0", driver.Params{"readmemory": 0}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := open(t, tg.New(t, "", tc.params), "/memory", 0)
			defer r.Close()
			head := make([]byte, tg.Chunk/2)
			if _, err := io.ReadFull(r, head); err != nil {
				t.Fatal(err)
			}
			st, ok := ranged.Inspect(r)
			if ok != tc.ranged {
				t.Fatalf("reader fetches ranges: %v, want %v", ok, tc.ranged)
			}
			if ok && st.Queued != tc.ahead {
				t.Errorf("%d ranges fetched ahead, want %d", st.Queued, tc.ahead)
			}
			rest, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(append(head, rest...), data) {
				t.Fatalf("read %d bytes (%v), differing from the file", len(head)+len(rest), err)
			}
		})
	}
}

// behindBuffered: once the reader hands out a range it fetched into a
// buffer, which holds no connection, readconcurrency ranges are on the
// wire behind it, not one fewer: with one fewer, a reader whose client
// keeps up waits on readconcurrency-1 streams (three of the default four,
// measured at 105 MB/s where four curl streams carried more through the
// same WAN-shaped link to S3).
func behindBuffered(t *testing.T, tg Target) {
	data := randomBytes(t, 8*tg.Chunk)
	put(t, tg, "/buffered", data)
	const conc = 3
	r := open(t, tg.New(t, "", driver.Params{"readconcurrency": conc}), "/buffered", 0)
	defer r.Close()
	// The first range streams; one byte past it the reader is on the
	// first buffered range.
	head := make([]byte, tg.Chunk+1)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	st, _ := ranged.Inspect(r)
	if !st.Buffered {
		t.Fatal("reading the second range from a response, want a buffered range")
	}
	if st.Queued != conc {
		t.Errorf("%d ranges fetched behind the buffered one, want readconcurrency (%d)", st.Queued, conc)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(append(head, rest...), data) {
		t.Fatalf("read %d bytes (%v), differing from the file", len(head)+len(rest), err)
	}
}
