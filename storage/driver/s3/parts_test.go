package s3

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/inflight/inflighttest"
)

// partProxy stands between the driver and MinIO and watches part
// uploads: how many were in flight at once, and it can refuse one part
// number. A part waits (up to hold) for a second one to arrive, so that a
// writer able to keep two in flight is seen doing it.
type partProxy struct {
	url  string
	fail int // part number answered 403, 0: none
	*inflighttest.Gauge
}

func newPartProxy(t *testing.T, upstream string, fail int) *partProxy {
	t.Helper()
	p := &partProxy{fail: fail, Gauge: inflighttest.NewGauge(500 * time.Millisecond)}
	p.url = minioProxy(t, upstream, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		num, _ := strconv.Atoi(r.URL.Query().Get("partNumber"))
		if r.Method != http.MethodPut || num == 0 {
			next.ServeHTTP(w, r)
			return
		}
		p.Enter()
		defer p.Leave()
		if num == p.fail {
			refuse(w)
			return
		}
		next.ServeHTTP(w, r)
	})
	return p
}

func TestWriteConcurrencyBoundsPartsInFlight(t *testing.T) {
	s := newStore(t)
	tests := []struct {
		name     string
		params   driver.Params
		min, max int
	}{
		{"default", nil, 2, defaultWriteConcurrency},
		{"writeconcurrency 1", driver.Params{"writeconcurrency": 1}, 1, 1},
		{"writeconcurrency 2", driver.Params{"writeconcurrency": 2}, 2, 2},
		{"writememory 0", driver.Params{"writememory": 0}, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPartProxy(t, s.m.Endpoint, 0)
			d := s.through(t, p.url, tc.params)
			data := randomBytes(t, 6*minChunkSize+123)
			path := "/" + rootFor(tc.name)
			w := openWriter(t, d, path, false)
			write(t, w, data)
			if err := w.Commit(context.Background()); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if got := readAll(t, s.driver(t, "", nil), path); !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes differing from the %d written", len(got), len(data))
			}
			if m := p.Most(); m < tc.min || m > tc.max {
				t.Errorf("%d parts in flight at most, want between %d and %d", m, tc.min, tc.max)
			}
		})
	}
}

// TestWriterFailedPartPoisonsAndResumes: a part refused while later ones
// land leaves the upload with a gap; the writer reports the failure, and a
// writer on another instance resumes after the parts before the gap, so
// the committed file is exactly what was written.
func TestWriterFailedPartPoisonsAndResumes(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	p := newPartProxy(t, s.m.Endpoint, 3)
	data := randomBytes(t, 6*minChunkSize+77)
	w := openWriter(t, s.through(t, p.url, nil), "/f", false)
	_, werr := w.Write(data)
	cerr := w.Close()
	if werr == nil && cerr == nil {
		t.Fatal("Write and Close succeeded with part 3 refused")
	}
	w = openWriter(t, s.driver(t, "", nil), "/f", true)
	if got := w.Size(); got != 2*minChunkSize {
		t.Fatalf("resumed Size = %d, want %d (the parts before the refused one)", got, 2*minChunkSize)
	}
	write(t, w, data[w.Size():])
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	s.wantOnly(t, s.driver(t, "", nil), "/f", "f", data)
}

// TestResumeAfterCrashWithPartsInFlight: a writer closed after two parts
// and a tail; its successor died with parts 3 and 4 in flight, of which
// only 4 landed. The next writer must resume at the Close (the tail is
// still good: it follows parts 1 and 2), ignoring part 4.
func TestResumeAfterCrashWithPartsInFlight(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	data := randomBytes(t, 4*minChunkSize+500)
	cut := 2*minChunkSize + 300
	w := openWriter(t, s.driver(t, "", nil), "/f", false)
	write(t, w, data[:cut])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ups := s.uploads(t, "f")
	if len(ups) != 1 {
		t.Fatalf("%d multipart uploads after Close, want 1", len(ups))
	}
	// What the dead writer's part 4 left: bytes that never follow part 2.
	junk := bytes.Repeat([]byte{0xEE}, minChunkSize)
	if _, err := s.m.Client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(s.bucket), Key: aws.String("f"), UploadId: aws.String(ups[0]),
		PartNumber: aws.Int32(4), Body: bytes.NewReader(junk), ContentLength: aws.Int64(int64(len(junk))),
	}); err != nil {
		t.Fatal(err)
	}
	w = openWriter(t, s.driver(t, "", nil), "/f", true)
	if got := w.Size(); got != int64(cut) {
		t.Fatalf("resumed Size = %d, want %d", got, cut)
	}
	write(t, w, data[cut:])
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := readAll(t, s.driver(t, "", nil), "/f"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes differing from the %d written", len(got), len(data))
	}
}

// TestCancelWithPartsInFlightLeavesNothing: Cancel while parts are still
// uploading stops them and leaves neither upload, parts nor state.
func TestCancelWithPartsInFlightLeavesNothing(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	p := newPartProxy(t, s.m.Endpoint, 0)
	p.Hold = 2 * time.Second // parts are surely in flight at Cancel
	w := openWriter(t, s.through(t, p.url, nil), "/f", false)
	write(t, w, randomBytes(t, 3*minChunkSize+10))
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if ups := s.uploads(t, "f"); len(ups) != 0 {
		t.Errorf("multipart uploads left after Cancel: %v", ups)
	}
	if keys := s.keys(t); len(keys) != 0 {
		t.Errorf("objects left after Cancel: %v", keys)
	}
	if _, err := s.driver(t, "", nil).Writer(ctx, "/f", true); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("resume after Cancel: err = %v, want ErrNotFound", err)
	}
}

// TestCloseSendsALongTailAsAPart: a tail of at least 5 MiB left at Close
// goes to S3 as a part, not into the state object, and the write resumes
// and commits as before.
func TestCloseSendsALongTailAsAPart(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	chunk := driver.Params{"chunksize": 6 << 20}
	data := randomBytes(t, 2*(6<<20+(11<<19))) // two writes of 11.5 MiB
	half := len(data) / 2
	w := openWriter(t, s.driver(t, "", chunk), "/f", false)
	write(t, w, data[:half])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := s.m.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(stateDir + "f")})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt64(st.ContentLength); n != 0 {
		t.Errorf("state object holds %d bytes, want none (the 5.5 MiB tail sent as a part)", n)
	}
	w = openWriter(t, s.driver(t, "", chunk), "/f", true)
	if w.Size() != int64(half) {
		t.Fatalf("resumed Size = %d, want %d", w.Size(), half)
	}
	write(t, w, data[half:])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s.driver(t, "", nil), "/f"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes differing from the %d written", len(got), len(data))
	}
}
