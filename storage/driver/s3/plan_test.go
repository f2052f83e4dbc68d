package s3

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/inflight/inflighttest"
)

// sizeProxy stands between the driver and MinIO and notes the size of
// every part sent, and how many were in flight at once: a part waits (up
// to two seconds) for want parts in all, so that parts sent together are
// seen together.
type sizeProxy struct {
	url string
	*inflighttest.Sizes
}

func newSizeProxy(t *testing.T, upstream string, want int) *sizeProxy {
	t.Helper()
	p := &sizeProxy{Sizes: inflighttest.NewSizes(2*time.Second, want)}
	p.url = minioProxy(t, upstream, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if num, _ := strconv.Atoi(r.URL.Query().Get("partNumber")); r.Method == http.MethodPut && num > 0 {
			p.Note(r.ContentLength)
			p.Enter()
			defer p.Leave()
		}
		next.ServeHTTP(w, r)
	})
	return p
}

// tenMiB gives a driver the default chunksize, which the plan cuts below
// (the tests' drivers have 5 MiB, S3's minimum).
var tenMiB = driver.Params{"chunksize": defaultChunkSize}

// TestExpectSplitsAChunkIntoPartsSentTogether: a 16 MiB chunk announced
// before it is written goes out as three parts of 5.33 MiB in flight at
// once, not as a 10 MiB part and a 6 MiB tail after it, and the write
// resumes after them on another instance and commits exactly.
func TestExpectSplitsAChunkIntoPartsSentTogether(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	p := newSizeProxy(t, s.m.Endpoint, 3)
	const chunk = 16 << 20
	data := randomBytes(t, 2*chunk+1000)
	// Through the wrapper, as Berth opens a writer: the hint must get
	// through it.
	d := driver.Wrap(s.through(t, p.url, tenMiB))
	w := openWriter(t, d, "/f", false)
	driver.Expect(w, chunk)
	for b := data[:chunk]; len(b) > 0; b = b[min(len(b), 256<<10):] {
		write(t, w, b[:min(len(b), 256<<10)]) // as the registry copies a body
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	third := int64(chunk / 3)
	p.Check(t, "parts", []int64{third, third, chunk - 2*third}, 3)
	st, err := s.m.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(stateDir + "f")})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt64(st.ContentLength); n != 0 {
		t.Errorf("state object holds %d bytes, want none (every byte in parts)", n)
	}

	// Another instance resumes after the three parts; its chunk and the
	// last bytes, announced together, commit.
	w = openWriter(t, s.through(t, p.url, tenMiB), "/f", true)
	if got := w.Size(); got != chunk {
		t.Fatalf("resumed Size = %d, want %d", got, chunk)
	}
	driver.Expect(w, int64(len(data)-chunk))
	write(t, w, data[chunk:])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if sizes, _ := p.Take(); len(sizes) != 3 || sizes[0] < minChunkSize {
		t.Errorf("second round: parts of %v bytes, want three of 5 MiB or more", sizes)
	}
	s.wantOnly(t, s.driver(t, "", nil), "/f", "f", data)
}

// TestExpectThatLiesStoresTheBytesWritten: the hint is a plan, not a
// promise: fewer or more bytes than announced, with a tail resumed or
// not, are stored exactly, and no part but the last is under S3's
// minimum (MinIO refuses to complete an upload with one).
func TestExpectThatLiesStoresTheBytesWritten(t *testing.T) {
	s := newStore(t)
	const mib = 1 << 20
	for _, tc := range append(inflighttest.HintsThatLie(),
		inflighttest.Rounds{Name: "a tail larger than a planned part", Expect: []int64{0, 7 * mib}, Cuts: []int{9 * mib, 16 * mib}}) {
		t.Run(tc.Name, func(t *testing.T) {
			data := randomBytes(t, tc.Cuts[len(tc.Cuts)-1])
			path := "/" + rootFor(tc.Name)
			open := func(resume bool) driver.FileWriter { return openWriter(t, s.driver(t, "", tenMiB), path, resume) }
			put := func(w driver.FileWriter, b []byte) { write(t, w, b) }
			inflighttest.WriteRounds(t, tc, open, put, data)
			if got := readAll(t, s.driver(t, "", nil), path); !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes differing from the %d written", len(got), len(data))
			}
		})
	}
}

// TestExpectKeepsChunksizeForAnUploadWithManyParts: S3 allows 10 000
// parts; past splitPartsBefore, a write goes on in chunksize parts so
// that the largest object it can hold stays near what they allow. (The
// plan is read from the writer: 2000 real parts would be 10 GB.)
func TestExpectKeepsChunksizeForAnUploadWithManyParts(t *testing.T) {
	s := newStore(t)
	d := s.driver(t, "", tenMiB)
	for _, tc := range []struct {
		parts   int
		planned int
	}{{0, 2}, {splitPartsBefore - 1, 2}, {splitPartsBefore, 0}, {9000, 0}} {
		fw, err := d.NewWriter(context.Background(), "/f")
		if err != nil {
			t.Fatal(err)
		}
		w := fw.(*writer)
		w.parts = make([]types.CompletedPart, tc.parts)
		w.Expect(16 << 20)
		if w.planned != tc.planned {
			t.Errorf("after %d parts: %d planned parts, want %d", tc.parts, w.planned, tc.planned)
		}
		if w.planned > 0 && w.planSize < minChunkSize {
			t.Errorf("after %d parts: planned parts of %d bytes, under S3's minimum", tc.parts, w.planSize)
		}
		w.parts = nil // sent nowhere: nothing to cancel
		if err := w.Cancel(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
