package registry

import (
	"net/http"
	"testing"
)

// TestBlobRangeSelectingNoByteIs416 covers what FuzzBlobRange found:
// net/http answers a zero-length suffix range with a 206 whose
// Content-Range ends before it starts ("bytes 10-9/10", "bytes 0--1/0").
func TestBlobRangeSelectingNoByteIs416(t *testing.T) {
	s := newServer(t, nil)
	full := s.pushBlob("app", []byte("0123456789"))
	empty := s.pushBlob("app", []byte{})
	tests := []struct {
		name, blob, rng string
		status          int
		contentRange    string
	}{
		{"suffix of zero bytes", full.String(), "bytes=-0", http.StatusRequestedRangeNotSatisfiable, "bytes */10"},
		// net/http serves an empty file whole whatever the Range, on
		// purpose (clients send a Range with every request).
		{"suffix of an empty blob", empty.String(), "bytes=-5", http.StatusOK, ""},
		{"zero suffix beside a range", full.String(), "bytes=-0, 2-3", http.StatusPartialContent, "bytes 2-3/10"},
		{"suffix", full.String(), "bytes=-3", http.StatusPartialContent, "bytes 7-9/10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.do("GET", "/v2/app/blobs/"+tt.blob, nil, "Range", tt.rng)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			res.expectHeader(t, "Content-Range", tt.contentRange)
		})
	}
}
