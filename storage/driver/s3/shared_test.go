package s3

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-registry/berth/storage/driver"
)

// partsSize is what CNCF Distribution's driver resumes from: the one
// multipart upload on key and the sum of its parts.
func (s *store) partsSize(t *testing.T, key string) int64 {
	t.Helper()
	ups := s.uploads(t, key)
	if len(ups) != 1 {
		t.Fatalf("%d multipart uploads on %s, want exactly one for Distribution to continue", len(ups), key)
	}
	out, err := s.m.Client.ListParts(context.Background(), &s3.ListPartsInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: aws.String(ups[0]),
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range out.Parts {
		n += aws.ToInt64(p.Size)
	}
	return n
}

// TestSharedCloseLeavesEveryByteInParts: after CloseShared, the one
// multipart upload on the key holds every byte written, in parts (what
// Distribution's driver resumes), empty or not, whether the write ended
// mid-part, on a part or under one; the next writer resumes it at the
// same size, and the commit holds exactly the bytes written.
func TestSharedCloseLeavesEveryByteInParts(t *testing.T) {
	s := newStore(t)
	data := randomBytes(t, 2*minChunkSize+minChunkSize/2+7)
	cuts := []int{0, 1000, minChunkSize + 1000, 2 * minChunkSize, 2*minChunkSize + 3, len(data)}
	s.writeInRounds(t, data, cuts, func(i int, _ *Driver, w driver.FileWriter, cut int) {
		if err := driver.CloseShared(w); err != nil {
			t.Fatalf("round %d: CloseShared: %v", i, err)
		}
		if got := s.partsSize(t, "root"+roundsPath); got != int64(cut) {
			t.Fatalf("round %d: the parts hold %d bytes, want the %d written", i, got, cut)
		}
	})
}

// TestResumeCompletesAForeignShortPart: a multipart upload ending in a
// short part the state object does not name (CNCF Distribution closed the
// write; or Berth died between sending its tail and recording it) cannot
// be appended to: the writer completes it, every byte in order, and
// reports no unfinished write, so the caller copies the file. Nothing is
// aborted, so nothing is lost.
func TestResumeCompletesAForeignShortPart(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	data := randomBytes(t, minChunkSize+3000)
	t.Run("distribution's write", func(t *testing.T) {
		const path = "/dist/data"
		key := aws.String("root/dist/data")
		up, err := s.m.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: key})
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range [][]byte{data[:minChunkSize], data[minChunkSize:]} {
			if _, err := s.m.Client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: aws.String(s.bucket), Key: key, UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(b),
			}); err != nil {
				t.Fatal(err)
			}
		}
		d := s.driver(t, "root", nil)
		if _, err := d.Writer(ctx, path, true); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("Writer(append) on a foreign short part: %v, want ErrNotFound", err)
		}
		if got := readAll(t, d, path); !bytes.Equal(got, data) {
			t.Fatalf("completed file holds %d bytes, want the %d in the parts", len(got), len(data))
		}
	})
	t.Run("tail sent, state not recorded", func(t *testing.T) {
		const path = "/crash/data"
		d := s.driver(t, "root", nil)
		w := openWriter(t, d, path, false)
		write(t, w, data[:1000])
		if err := driver.CloseShared(w); err != nil {
			t.Fatal(err)
		}
		w = openWriter(t, d, path, true)
		write(t, w, data[1000:2000])
		// Killed after the tail's part landed, before the state object.
		ww := w.(*writer)
		if err := ww.settle(); err != nil {
			t.Fatal(err)
		}
		if err := ww.shareTail(map[string]string{}); err != nil {
			t.Fatal(err)
		}
		ww.done = true
		ww.release()
		if _, err := d.Writer(ctx, path, true); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("Writer(append) after the crash: %v, want ErrNotFound", err)
		}
		if got := readAll(t, d, path); !bytes.Equal(got, data[:2000]) {
			t.Fatalf("completed file holds %d bytes, want the 2000 written", len(got))
		}
	})
}
