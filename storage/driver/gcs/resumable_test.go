package gcs

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/berth-registry/berth/storage/driver/internal/inflight"
)

// session is a resumable upload session as GCS documents it, which can be
// told to fail a request after storing part of it, as a broken connection
// or a 503 may leave things.
type session struct {
	mu        sync.Mutex
	data      []byte
	final     bool
	failNext  int // store this many bytes of the next data request, then answer 503
	failArmed bool
	requests  []string
}

func (s *session) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	cr := r.Header.Get("Content-Range")
	s.requests = append(s.requests, cr)
	rng, total, _ := strings.Cut(strings.TrimPrefix(cr, "bytes "), "/")
	if rng != "*" {
		from, _, _ := strings.Cut(rng, "-")
		off, _ := strconv.Atoi(from)
		if off != len(s.data) {
			http.Error(w, "offset mismatch", http.StatusBadRequest)
			return
		}
		if s.failArmed {
			s.failArmed = false
			s.data = append(s.data, body[:s.failNext]...)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		s.data = append(s.data, body...)
	}
	if total != "*" && strconv.Itoa(len(s.data)) == total {
		s.final = true
		w.WriteHeader(http.StatusOK)
		return
	}
	if len(s.data) > 0 {
		w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", len(s.data)-1))
	}
	w.WriteHeader(statusResumeIncomplete)
}

// TestUploadRetriesFromStoredOffset: after a failed chunk the driver asks
// the session what it holds and sends only the rest.
func TestUploadRetriesFromStoredOffset(t *testing.T) {
	tests := []struct {
		name   string
		stored int // bytes of the failed request the session kept
		final  bool
	}{
		{"nothing kept, middle chunk", 0, false},
		{"part kept, middle chunk", minChunk, false},
		{"part kept, final chunk", 1000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &session{failNext: tt.stored, failArmed: true}
			srv := httptest.NewServer(s)
			defer srv.Close()
			d := &Driver{hc: srv.Client()}
			data := pattern(2 * minChunk)
			if tt.final {
				data = data[:2*minChunk-7]
			}
			stored, err := d.upload(t.Context(), srv.URL, data, 0, tt.final)
			if err != nil {
				t.Fatalf("upload: %v (requests %q)", err, s.requests)
			}
			if stored != int64(len(data)) || !bytes.Equal(s.data, data) || s.final != tt.final {
				t.Fatalf("stored %d, session holds %d bytes (equal %v), final %v; requests %q",
					stored, len(s.data), bytes.Equal(s.data, data), s.final, s.requests)
			}
			if !strings.Contains(strings.Join(s.requests, " "), "bytes */*") {
				t.Fatalf("no status query after the failure: %q", s.requests)
			}
		})
	}
}

func TestParseStored(t *testing.T) {
	tests := []struct {
		header string
		want   int64
		ok     bool
	}{
		{"", 0, true},
		{"bytes=0-262143", 262144, true},
		{"bytes=0-0", 1, true},
		{"bytes=zero", 0, false},
	}
	for _, tt := range tests {
		got, err := parseStored(tt.header)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("parseStored(%q) = %d, %v", tt.header, got, err)
		}
	}
}

// TestWriterHoldsAtMostOneChunk feeds a writer in pieces of awkward sizes
// and checks its buffer never outgrows one chunk.
func TestWriterHoldsAtMostOneChunk(t *testing.T) {
	s := &session{}
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", srv.URL+"/session")
	})
	mux.Handle("PUT /session", s)
	srv = httptest.NewServer(mux)
	defer srv.Close()
	const chunk = 2 * minChunk
	d := &Driver{hc: srv.Client(), uploadBase: srv.URL + "/upload", chunkSize: chunk}
	// Built directly: Writer would look for a sidecar in a bucket.
	wr := &writer{d: d, ctx: t.Context(), path: "/f",
		flight: inflight.New(nil, semaphore.NewWeighted(0), 1, func(string) {})}
	data := pattern(5*chunk + 12345)
	for rest, n := data, 1; len(rest) > 0; n = n*3 + 7 {
		k := min(n, len(rest))
		if _, err := wr.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
		if cap(wr.buf) > chunk {
			t.Fatalf("buffer capacity %d after %d bytes, more than a chunk", cap(wr.buf), len(data)-len(rest))
		}
	}
	if _, err := d.upload(t.Context(), wr.session, wr.buf, wr.stored, true); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.data, data) {
		t.Fatalf("session holds %d bytes, not the %d written", len(s.data), len(data))
	}
}
