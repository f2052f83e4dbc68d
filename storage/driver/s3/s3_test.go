package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
)

// store is one bucket on a MinIO started for the test.
type store struct {
	m      *testenv.MinIO
	bucket string
}

func newStore(t testing.TB) *store {
	t.Helper()
	m := testenv.StartMinIO(t)
	return &store{m: m, bucket: m.Bucket(t)}
}

// driver builds a driver on the store; extra overrides or adds keys.
func (s *store) driver(t testing.TB, root string, extra driver.Params) *Driver {
	t.Helper()
	p := driver.Params{
		"accesskey":      s.m.AccessKey,
		"secretkey":      s.m.SecretKey,
		"region":         s.m.Region,
		"regionendpoint": s.m.Endpoint,
		"forcepathstyle": true,
		"secure":         false,
		"bucket":         s.bucket,
		"rootdirectory":  root,
		"chunksize":      minChunkSize,
	}
	for k, v := range extra {
		p[k] = v
	}
	d, err := New(context.Background(), p)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

// keys lists every object key in the bucket.
func (s *store) keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.m.Client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list objects: %v", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// uploads lists the unfinished multipart uploads on key.
func (s *store) uploads(t *testing.T, key string) []string {
	t.Helper()
	out, err := s.m.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(s.bucket), Prefix: aws.String(key),
	})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	var ids []string
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) == key {
			ids = append(ids, aws.ToString(u.UploadId))
		}
	}
	return ids
}

// wantOnly checks that path, read through d, holds data, and that the
// bucket holds only its object, key, with no multipart upload left on it.
func (s *store) wantOnly(t *testing.T, d driver.Driver, path, key string, data []byte) {
	t.Helper()
	if got := readAll(t, d, path); !bytes.Equal(got, data) {
		t.Fatalf("%s holds %d bytes differing from the %d written", path, len(got), len(data))
	}
	if keys := s.keys(t); !slices.Equal(keys, []string{key}) {
		t.Errorf("bucket holds %q, want only %s", keys, key)
	}
	if ups := s.uploads(t, key); len(ups) != 0 {
		t.Errorf("multipart uploads left on %s: %q", key, ups)
	}
}

// roundsPath is the file writeInRounds writes, under the root "root".
const roundsPath = "/up/data"

// writeInRounds writes data at roundsPath, with a new driver instance and
// writer each round, each resuming where the round before ended; a round
// ends at its cut with end, the last one with Commit. Then the file holds
// data and nothing else is left.
func (s *store) writeInRounds(t *testing.T, data []byte, cuts []int, end func(i int, d *Driver, w driver.FileWriter, cut int)) {
	t.Helper()
	prev := 0
	for i, cut := range cuts {
		d := s.driver(t, "root", nil)
		w := openWriter(t, d, roundsPath, i > 0)
		if got := w.Size(); got != int64(prev) {
			t.Fatalf("round %d: resumed Size = %d, want %d", i, got, prev)
		}
		write(t, w, data[prev:cut])
		if got := w.Size(); got != int64(cut) {
			t.Fatalf("round %d: Size = %d, want %d", i, got, cut)
		}
		if i == len(cuts)-1 {
			if err := w.Commit(context.Background()); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			break
		}
		end(i, d, w, cut)
		prev = cut
	}
	s.wantOnly(t, s.driver(t, "root", nil), roundsPath, "root"+roundsPath, data)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, d driver.Driver, path string) []byte {
	t.Helper()
	r, err := d.Reader(context.Background(), path, 0)
	if err != nil {
		t.Fatalf("Reader(%s): %v", path, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

func write(t *testing.T, w driver.FileWriter, b []byte) {
	t.Helper()
	if n, err := w.Write(b); err != nil || n != len(b) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(b))
	}
}

func openWriter(t *testing.T, d driver.Driver, path string, append bool) driver.FileWriter {
	t.Helper()
	w, err := d.Writer(context.Background(), path, append)
	if err != nil {
		t.Fatalf("Writer(%s, append=%v): %v", path, append, err)
	}
	return w
}

func TestWriterResumesMultipartUploadOnNewInstance(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	data := randomBytes(t, 2*minChunkSize+minChunkSize/2+7)
	// Rounds end mid-part, exactly on a part, and with less than a part.
	cuts := []int{minChunkSize + 1000, 2 * minChunkSize, 2*minChunkSize + 3, len(data)}
	s.writeInRounds(t, data, cuts, func(i int, d *Driver, w driver.FileWriter, _ int) {
		if err := w.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", i, err)
		}
		if _, err := d.Stat(ctx, roundsPath); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("round %d: unfinished file visible: Stat err = %v", i, err)
		}
	})
}

func TestWriterResumesSmallWritesWithoutMultipart(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var want []byte
	for i := range 3 {
		d := s.driver(t, "", nil)
		w := openWriter(t, d, "/small", i > 0)
		chunk := []byte(fmt.Sprintf("round %d;", i))
		write(t, w, chunk)
		want = append(want, chunk...)
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if ups := s.uploads(t, "small"); len(ups) != 0 {
			t.Fatalf("a write under one part started a multipart upload: %v", ups)
		}
	}
	d := s.driver(t, "", nil)
	w := openWriter(t, d, "/small", true)
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}
	s.wantOnly(t, d, "/small", "small", want)
}

func TestWriterCancelLeavesNothing(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	d := s.driver(t, "r", nil)
	w := openWriter(t, d, "/a/b", false)
	write(t, w, randomBytes(t, minChunkSize+10)) // one part and a tail
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if ups := s.uploads(t, "r/a/b"); len(ups) != 1 {
		t.Fatalf("after Close: %d multipart uploads, want 1", len(ups))
	}
	w = openWriter(t, s.driver(t, "r", nil), "/a/b", true)
	write(t, w, []byte("more"))
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if ups := s.uploads(t, "r/a/b"); len(ups) != 0 {
		t.Errorf("multipart uploads left after Cancel: %v", ups)
	}
	if keys := s.keys(t); len(keys) != 0 {
		t.Errorf("objects left after Cancel: %v", keys)
	}
	if _, err := d.Writer(ctx, "/a/b", true); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("resume after Cancel: err = %v, want ErrNotFound", err)
	}
}

func TestWriterWithoutAppendDiscardsUnfinished(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	d := s.driver(t, "", nil)
	w := openWriter(t, d, "/f", false)
	write(t, w, randomBytes(t, minChunkSize+10))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openWriter(t, d, "/f", false)
	if w.Size() != 0 {
		t.Fatalf("fresh writer Size = %d, want 0", w.Size())
	}
	write(t, w, []byte("fresh"))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d, "/f"); string(got) != "fresh" {
		t.Errorf("read back %q, want %q", got, "fresh")
	}
	if ups := s.uploads(t, "f"); len(ups) != 0 {
		t.Errorf("discarded multipart upload still pending: %v", ups)
	}
	if keys := s.keys(t); !slices.Equal(keys, []string{"f"}) {
		t.Errorf("bucket holds %v, want only the committed file", keys)
	}
}

func TestUnfinishedListsClosedWrites(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	d := s.driver(t, "root", nil)
	for _, p := range []string{"/up/x/data", "/up/y/data", "/other/data"} {
		w := openWriter(t, d, p, false)
		write(t, w, []byte("abc"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.Unfinished(ctx, "/up")
	if err != nil {
		t.Fatalf("Unfinished: %v", err)
	}
	var paths []string
	for p, started := range got {
		paths = append(paths, p)
		if started.IsZero() {
			t.Errorf("%s: zero start time", p)
		}
	}
	slices.Sort(paths)
	if want := []string{"/up/x/data", "/up/y/data"}; !slices.Equal(paths, want) {
		t.Errorf("Unfinished(/up) = %v, want %v", paths, want)
	}
}

func TestMoveUsesMultipartCopyAboveThreshold(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	d := s.driver(t, "", driver.Params{
		"multipartcopythresholdsize":  minChunkSize,
		"multipartcopychunksize":      minChunkSize,
		"multipartcopymaxconcurrency": 2,
	})
	tests := []struct {
		name      string
		size      int
		multipart bool
	}{
		{"at threshold copies in one request", minChunkSize, false},
		{"above threshold copies in parts", 2*minChunkSize + 12345, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := fmt.Sprintf("/src/%d", i), fmt.Sprintf("/dst/%d", i)
			data := randomBytes(t, tt.size)
			if err := d.PutContent(ctx, src, data); err != nil {
				t.Fatal(err)
			}
			if err := d.Move(ctx, src, dst); err != nil {
				t.Fatalf("Move: %v", err)
			}
			if got := readAll(t, d, dst); !bytes.Equal(got, data) {
				t.Fatalf("moved file differs (%d bytes, want %d)", len(got), len(data))
			}
			if _, err := d.Stat(ctx, src); !errors.Is(err, driver.ErrNotFound) {
				t.Errorf("source after Move: Stat err = %v, want ErrNotFound", err)
			}
			head, err := s.m.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(dst[1:])})
			if err != nil {
				t.Fatal(err)
			}
			// A multipart object's ETag ends in -<number of parts>.
			if got := strings.Contains(aws.ToString(head.ETag), "-"); got != tt.multipart {
				t.Errorf("ETag %s: multipart = %v, want %v", aws.ToString(head.ETag), got, tt.multipart)
			}
		})
	}
}

func TestListAndDeletePaginateOver1000Keys(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	d := s.driver(t, "root", nil)
	const n = 1234
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 16)
		errs = make(chan error, n)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.PutContent(ctx, fmt.Sprintf("/many/f%04d", i), []byte("x")); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "/many-sibling", []byte("y")); err != nil {
		t.Fatal(err)
	}

	list, err := d.List(ctx, "/many")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != n {
		t.Errorf("List returned %d entries, want %d", len(list), n)
	}
	walked := 0
	err = d.Walk(ctx, "/many", func(fi driver.FileInfo) error {
		walked++
		return nil
	})
	if err != nil || walked != n {
		t.Errorf("Walk saw %d entries (err %v), want %d", walked, err, n)
	}
	if err := d.Delete(ctx, "/many"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if keys := s.keys(t); !slices.Equal(keys, []string{"root/many-sibling"}) {
		t.Errorf("after Delete the bucket holds %d keys (first %.3v), want only root/many-sibling", len(keys), keys)
	}
}

func TestWalkOrdersComponentWise(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	d := s.driver(t, "", nil)
	// In S3's byte order "a-b" and "a.c/…" come before "a/…".
	for _, p := range []string{"/a/x", "/a-b", "/a.c/y", "/a/w/z", "/b"} {
		if err := d.PutContent(ctx, p, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	w := openWriter(t, d, "/a/unfinished", false) // its state must stay hidden
	write(t, w, []byte("u"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
		got = append(got, fi.Path)
		if fi.Path == "/a/w" {
			return driver.ErrSkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/a", "/a/w", "/a/x", "/a-b", "/a.c", "/a.c/y", "/b"}
	if !slices.Equal(got, want) {
		t.Errorf("Walk order = %v, want %v", got, want)
	}
	list, err := d.List(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(list)
	if want := []string{"/a", "/a-b", "/a.c", "/b"}; !slices.Equal(list, want) {
		t.Errorf("List(/) = %v, want %v", list, want)
	}
}

func TestRedirectURLPresignsGet(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	d := s.driver(t, "", driver.Params{"redirectexpiry": "5m"})
	if err := d.PutContent(ctx, "/blob", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method string
		want   bool
	}{{http.MethodGet, true}, {http.MethodHead, true}, {http.MethodPut, false}}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			u, err := d.RedirectURL(httptest.NewRequest(tt.method, "/v2/x/blobs/y", nil), "/blob")
			if err != nil {
				t.Fatal(err)
			}
			if (u != "") != tt.want {
				t.Fatalf("RedirectURL = %q, want a URL: %v", u, tt.want)
			}
			if u == "" {
				return
			}
			if !strings.Contains(u, "X-Amz-Expires=300") {
				t.Errorf("URL %s does not carry the configured expiry", u)
			}
			req, _ := http.NewRequestWithContext(ctx, tt.method, u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || resp.ContentLength != 5 {
				t.Fatalf("%s presigned URL: %s, length %d", tt.method, resp.Status, resp.ContentLength)
			}
			if tt.method == http.MethodGet && string(body) != "hello" {
				t.Errorf("body = %q, want hello", body)
			}
		})
	}
}

func TestReaderOffsets(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	d := s.driver(t, "", nil)
	if err := d.PutContent(ctx, "/f", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "/empty", nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		offset int64
		want   string
		err    error
	}{
		{"/f", 0, "0123456789", nil},
		{"/f", 4, "456789", nil},
		{"/f", 10, "", nil},
		{"/f", 11, "", driver.ErrInvalidOffset},
		{"/f", -1, "", driver.ErrInvalidOffset},
		{"/empty", 0, "", nil},
		{"/missing", 0, "", driver.ErrNotFound},
		{"/missing", 3, "", driver.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s@%d", tt.path, tt.offset), func(t *testing.T) {
			r, err := d.Reader(ctx, tt.path, tt.offset)
			if !errors.Is(err, tt.err) || (tt.err != nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			defer r.Close()
			b, _ := io.ReadAll(r)
			if string(b) != tt.want {
				t.Errorf("read %q, want %q", b, tt.want)
			}
		})
	}
}

func TestResumeIgnoresTailAlreadyUploadedAsPart(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	data := randomBytes(t, 2*minChunkSize+5)
	w := openWriter(t, s.driver(t, "", nil), "/f", false)
	write(t, w, data[:100])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// This writer uploads the stored tail within its first part, then dies
	// without Close: the state object still holds the 100-byte tail. (One
	// part at a time, so that the part has landed when Write returns.)
	w = openWriter(t, s.driver(t, "", driver.Params{"writeconcurrency": 1}), "/f", true)
	write(t, w, data[100:minChunkSize+50])

	w = openWriter(t, s.driver(t, "", nil), "/f", true)
	if got := w.Size(); got != minChunkSize {
		t.Fatalf("resumed Size = %d, want %d (the uploaded part only)", got, minChunkSize)
	}
	write(t, w, data[minChunkSize:])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	s.wantOnly(t, s.driver(t, "", nil), "/f", "f", data)
}
