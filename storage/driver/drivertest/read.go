package drivertest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

func (s *suite) readTests() map[string]func(*testing.T) {
	return map[string]func(*testing.T){
		"FromOffsets":               s.testReaderOffsets,
		"PastTheEndIsInvalidOffset": s.testReaderPastEnd,
		"MissingFileIsNotFound":     s.testReaderMissing,
	}
}

func (s *suite) testReaderOffsets(t *testing.T) {
	d := s.driver(t)
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	put(t, d, "/ranges/file", string(data))
	for _, off := range []int64{0, 1, 4095, 4096, 5000, 9999, 10000} {
		got, err := readAll(t.Context(), d, "/ranges/file", off)
		if err != nil {
			t.Fatalf("Reader at %d: %v", off, err)
		}
		if !bytes.Equal(got, data[off:]) {
			t.Errorf("Reader at %d gave %d bytes, not the %d from there", off, len(got), len(data)-int(off))
		}
	}
}

func (s *suite) testReaderPastEnd(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/ranges/small", "12345")
	for _, off := range []int64{6, 1 << 40} {
		_, err := d.Reader(t.Context(), "/ranges/small", off)
		wantErr(t, d, err, driver.ErrInvalidOffset, fmt.Sprintf("Reader at %d of 5 bytes", off))
	}
	_, err := d.Reader(t.Context(), "/ranges/small", -1)
	wantErr(t, d, err, driver.ErrInvalidOffset, "Reader at -1")
}

func (s *suite) testReaderMissing(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/rm/dir/file", "x")
	for _, p := range []string{"/rm/missing", "/rm/dir", "/rm/dir/file/below", "/rm/dir/fil"} {
		_, err := d.Reader(t.Context(), p, 0)
		wantErr(t, d, err, driver.ErrNotFound, "Reader("+p+")")
	}
}

func (s *suite) statTests() map[string]func(*testing.T) {
	return map[string]func(*testing.T){
		"FileAndDirectories": s.testStatFileAndDirs,
		"MissingIsNotFound":  s.testStatMissing,
	}
}

func (s *suite) testStatFileAndDirs(t *testing.T) {
	d := s.driver(t)
	before := time.Now()
	write(t, d, "/st/dir/file", "12345", "678")
	after := time.Now()
	fi, err := d.Stat(t.Context(), "/st/dir/file")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Path != "/st/dir/file" || fi.Size != 8 || fi.IsDir {
		t.Errorf("Stat(file) = %+v, want /st/dir/file, 8 bytes, not a directory", fi)
	}
	// Backends keep times to the second and may run on another clock.
	if fi.ModTime.Before(before.Add(-time.Minute)) || fi.ModTime.After(after.Add(time.Minute)) {
		t.Errorf("ModTime %v is not near the write (%v .. %v)", fi.ModTime, before, after)
	}
	for _, dir := range []string{"/st", "/st/dir", "/"} {
		fi, err := d.Stat(t.Context(), dir)
		if err != nil {
			t.Fatalf("Stat(%s): %v", dir, err)
		}
		if !fi.IsDir || fi.Path != dir || fi.Size != 0 {
			t.Errorf("Stat(%s) = %+v, want a directory of size 0 at that path", dir, fi)
		}
	}
}

func (s *suite) testStatMissing(t *testing.T) {
	d := s.driver(t)
	put(t, d, "/sm/dir/file", "x")
	for _, p := range []string{"/sm/nothing", "/sm/di", "/sm/dir/fil", "/sm/dir/file/below"} {
		wantNotFound(t, d, p)
	}
}
