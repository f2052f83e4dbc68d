package drivertest

import (
	"crypto/sha256"
	"hash"
	"io"
	"testing"
)

func (s *suite) largeTests() map[string]func(*testing.T) {
	return map[string]func(*testing.T){
		"StreamedResumedAndVerified": s.testLargeFile,
	}
}

// pattern is an endless reader of bytes that depend on their position, so
// any range of a large file can be checked without keeping it.
type pattern struct{ pos int64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		x := uint64(p.pos) * 0x9E3779B97F4A7C15
		b[i] = byte(x >> 56)
		p.pos++
	}
	return len(b), nil
}

func sumPattern(from, to int64) []byte {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.LimitReader(&pattern{pos: from}, to-from), make([]byte, 1<<20)); err != nil {
		panic(err)
	}
	return h.Sum(nil)
}

// testLargeFile streams a file in two writers on two instances, then reads
// it back whole and from an offset, hashing as it goes: nothing holds the
// file in the test's memory.
func (s *suite) testLargeFile(t *testing.T) {
	ctx := t.Context()
	size, half := s.large, s.large/2+12345
	buf := make([]byte, 1<<20)

	w, err := s.driver(t).Writer(ctx, "/large/file", false)
	if err != nil {
		t.Fatal(err)
	}
	src := &pattern{}
	if _, err := io.CopyBuffer(w, io.LimitReader(src, half), buf); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = s.driver(t).Writer(ctx, "/large/file", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != half {
		t.Fatalf("resumed Size = %d, want %d", w.Size(), half)
	}
	if _, err := io.CopyBuffer(w, io.LimitReader(src, size-half), buf); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	d := s.driver(t)
	fi, err := d.Stat(ctx, "/large/file")
	if err != nil || fi.Size != size {
		t.Fatalf("Stat = %+v, %v; want %d bytes", fi, err, size)
	}
	for _, off := range []int64{0, size - 3<<20 - 7} {
		r, err := d.Reader(ctx, "/large/file", off)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, r, buf)
		r.Close()
		if err != nil || n != size-off {
			t.Fatalf("read from %d: %d bytes, %v; want %d", off, n, err, size-off)
		}
		if !equalSum(h, sumPattern(off, size)) {
			t.Fatalf("content from %d differs from what was written", off)
		}
	}
}

func equalSum(h hash.Hash, want []byte) bool { return string(h.Sum(nil)) == string(want) }
