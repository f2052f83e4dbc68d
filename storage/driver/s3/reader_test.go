package s3

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-registry/berth/storage/driver"
)

// rangeProxy stands between the driver and MinIO, counts ranged GETs and
// refuses those starting at failAt ("": none).
func rangeProxy(t *testing.T, upstream string, failAt string, ranged *atomic.Int32) string {
	t.Helper()
	return minioProxy(t, upstream, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rg := r.Header.Get("Range")
		if r.Method == http.MethodGet && rg != "" {
			ranged.Add(1)
			if failAt != "" && strings.HasPrefix(rg, "bytes="+failAt+"-") {
				refuse(w)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func TestReaderFetchesRangesInOrder(t *testing.T) {
	s := newStore(t)
	data := randomBytes(t, 5*minChunkSize+1234)
	put := s.driver(t, "", nil)
	if err := put.PutContent(context.Background(), "/big", data); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, minChunkSize, 3*minChunkSize + 7, int64(len(data)) - 1, int64(len(data))} {
		var ranged atomic.Int32
		d := s.through(t, rangeProxy(t, s.m.Endpoint, "", &ranged), nil)
		r, err := d.Reader(context.Background(), "/big", off)
		if err != nil {
			t.Fatalf("Reader at %d: %v", off, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if !bytes.Equal(got, data[off:]) {
			t.Fatalf("read at %d: %d bytes differing from the %d stored after it", off, len(got), len(data)-int(off))
		}
		if want := (int64(len(data)) - off + minChunkSize - 1) / minChunkSize; off < int64(len(data)) && int64(ranged.Load()) != want {
			t.Errorf("read at %d: %d ranged GETs, want %d", off, ranged.Load(), want)
		}
	}
}

// TestReaderErrorMidStreamEndsTheRead: a range the backend refuses ends the
// read with an error right where that range starts; what came before is
// the file's.
func TestReaderErrorMidStreamEndsTheRead(t *testing.T) {
	s := newStore(t)
	data := randomBytes(t, 5*minChunkSize+99)
	if err := s.driver(t, "", nil).PutContent(context.Background(), "/big", data); err != nil {
		t.Fatal(err)
	}
	var ranged atomic.Int32
	failAt := 3 * minChunkSize
	d := s.through(t, rangeProxy(t, s.m.Endpoint, strconv.Itoa(failAt), &ranged), nil)
	r, err := d.Reader(context.Background(), "/big", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err == nil {
		t.Fatalf("read all %d bytes with the range at %d refused", len(got), failAt)
	}
	if len(got) != failAt || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("read %d bytes before the error (equal to the file's: %v), want the %d before the refused range",
			len(got), bytes.Equal(got, data[:min(len(got), len(data))]), failAt)
	}
}

// TestReaderFailsWhenFileReplacedMidRead: ranges are pinned to the ETag of
// the first response, so a file replaced during a read fails the read
// rather than mixing the two files' bytes.
func TestReaderFailsWhenFileReplacedMidRead(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	old := randomBytes(t, 6*minChunkSize)
	d := s.driver(t, "", driver.Params{"readconcurrency": 2})
	if err := d.PutContent(ctx, "/f", old); err != nil {
		t.Fatal(err)
	}
	r, err := d.Reader(ctx, "/f", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	repl := bytes.Repeat([]byte{0x5A}, len(old))
	if _, err := s.m.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String("f"), Body: bytes.NewReader(repl), ContentLength: aws.Int64(int64(len(repl))),
	}); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !bytes.Equal(got, old[:len(got)]) {
		t.Fatalf("read %d bytes that are not the first file's", len(got))
	}
	if err == nil {
		t.Fatalf("read the whole file (%d bytes) after it was replaced; want an error", len(got))
	}
}

// TestReaderOfASmallRangeCostsOneGET: a client reading a few bytes of a big
// file (a Range request) does not make the reader fetch chunks ahead.
func TestReaderOfASmallRangeCostsOneGET(t *testing.T) {
	s := newStore(t)
	data := randomBytes(t, 4*minChunkSize)
	if err := s.driver(t, "", nil).PutContent(context.Background(), "/big", data); err != nil {
		t.Fatal(err)
	}
	var ranged atomic.Int32
	d := s.through(t, rangeProxy(t, s.m.Endpoint, "", &ranged), nil)
	r, err := d.Reader(context.Background(), "/big", 100)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1000)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if q := len(r.(*rangeReader).queue); q != 0 {
		t.Errorf("%d ranges fetched ahead after reading 1000 bytes, want none", q)
	}
	r.Close()
	if !bytes.Equal(got, data[100:1100]) {
		t.Fatal("read bytes differ from the file's")
	}
	if n := ranged.Load(); n != 1 {
		t.Errorf("%d ranged GETs for 1000 bytes, want 1", n)
	}
}

// TestReadConcurrencyAndMemoryTakeEffect: readconcurrency 1 reads with one
// plain GET; readmemory 0 leaves nothing fetched ahead; the default fetches
// readconcurrency-1 ranges ahead while the first response streams.
func TestReadConcurrencyAndMemoryTakeEffect(t *testing.T) {
	s := newStore(t)
	data := randomBytes(t, (defaultReadConcurrency+2)*minChunkSize)
	if err := s.driver(t, "", nil).PutContent(context.Background(), "/big", data); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		params driver.Params
		ranged bool // the reader is a rangeReader
		ahead  int  // ranges queued after reading half the first chunk
	}{
		{"default", nil, true, defaultReadConcurrency - 1},
		{"readconcurrency 1", driver.Params{"readconcurrency": 1}, false, 0},
		{"readmemory 0", driver.Params{"readmemory": 0}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.driver(t, "", tc.params).Reader(context.Background(), "/big", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			head := make([]byte, minChunkSize/2)
			if _, err := io.ReadFull(r, head); err != nil {
				t.Fatal(err)
			}
			rr, ok := r.(*rangeReader)
			if ok != tc.ranged {
				t.Fatalf("reader is a rangeReader: %v, want %v", ok, tc.ranged)
			}
			if ok && len(rr.queue) != tc.ahead {
				t.Errorf("%d ranges fetched ahead, want %d", len(rr.queue), tc.ahead)
			}
			rest, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(append(head, rest...), data) {
				t.Fatalf("read %d bytes (%v), differing from the file", len(head)+len(rest), err)
			}
		})
	}
}

// TestReaderFetchesReadConcurrencyRangesBehindABufferedOne: once the reader
// hands out a range it fetched into a buffer, which holds no connection,
// readconcurrency ranges are on the wire behind it, not one fewer: with
// one fewer, a reader whose client keeps up waits on readconcurrency-1
// streams (three of the default four, measured at 105 MB/s where four
// curl streams carried more through the same WAN-shaped link).
func TestReaderFetchesReadConcurrencyRangesBehindABufferedOne(t *testing.T) {
	s := newStore(t)
	data := randomBytes(t, 8*minChunkSize)
	if err := s.driver(t, "", nil).PutContent(context.Background(), "/big", data); err != nil {
		t.Fatal(err)
	}
	const conc = 3
	r, err := s.driver(t, "", driver.Params{"readconcurrency": conc}).Reader(context.Background(), "/big", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The first range streams; one byte past it the reader is on the
	// first buffered range.
	head := make([]byte, minChunkSize+1)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	rr := r.(*rangeReader)
	if _, ok := rr.cur.(*bufBody); !ok {
		t.Fatalf("reading the second range from %T, want a buffered range", rr.cur)
	}
	if len(rr.queue) != conc {
		t.Errorf("%d ranges fetched behind the buffered one, want readconcurrency (%d)", len(rr.queue), conc)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(append(head, rest...), data) {
		t.Fatalf("read %d bytes (%v), differing from the file", len(head)+len(rest), err)
	}
}
