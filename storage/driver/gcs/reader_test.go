package gcs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/ranged/rangedtest"
)

// TestParallelReads runs the shared checks of parallel ranged reads on
// fake-gcs-server: ranges read from the first answer's generation,
// 256 KiB chunks and ranges so that a read spans many.
func TestParallelReads(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	rangedtest.Run(t, rangedtest.Target{
		Chunk:    minChunk,
		Upstream: g.Endpoint,
		New: func(t *testing.T, endpoint string, extra driver.Params) driver.Driver {
			p := driver.Params{"rootdirectory": root}
			if endpoint != "" {
				p["endpoint"] = endpoint
			}
			for k, v := range extra {
				p[k] = v
			}
			return newDriver(t, g, p)
		},
	})
}

// cutWriter passes at most n bytes of a body on, then breaks the
// connection, as a reset mid-download does.
type cutWriter struct {
	http.ResponseWriter
	n     int
	onCut func() // before the connection breaks
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		w.ResponseWriter.Write(p[:w.n])
		w.ResponseWriter.(http.Flusher).Flush()
		w.onCut()
		panic(http.ErrAbortHandler)
	}
	w.n -= len(p)
	return w.ResponseWriter.Write(p)
}

func (w *cutWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// TestReadResumesABrokenStream: a download whose connection breaks
// mid-stream goes on from the byte after the last one received, asking
// for the same generation, so the bytes are the file's; and if the file
// was replaced in between, the read fails rather than splice the new
// file's bytes onto the old one's.
func TestReadResumesABrokenStream(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	const cut = minChunk/2 + 12345 // inside the first range
	for _, tt := range []struct {
		name           string
		readconcurrent int
		replace        bool
	}{
		{"one GET", 1, false},
		{"parallel ranges", 4, false},
		{"one GET, replaced before the resume", 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := "/" + strings.ReplaceAll(tt.name, " ", "_")
			data := pattern(3*minChunk + 777)
			direct := newDriver(t, g, driver.Params{"rootdirectory": root})
			if err := direct.PutContent(t.Context(), path, data); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var gets []string
			broken := false
			url := testenv.StoreProxy(t, g.Endpoint, false, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.URL.Query().Get("alt") != "media" {
					next.ServeHTTP(w, r)
					return
				}
				mu.Lock()
				gets = append(gets, r.Header.Get("Range")+" generation="+r.URL.Query().Get("generation"))
				first := !broken
				broken = true
				mu.Unlock()
				if !first {
					next.ServeHTTP(w, r)
					return
				}
				next.ServeHTTP(&cutWriter{ResponseWriter: w, n: cut, onCut: func() {
					if tt.replace {
						if err := direct.PutContent(context.Background(), path, pattern(len(data)+1)); err != nil {
							t.Error(err)
						}
					}
				}}, r)
			})
			d := newDriver(t, g, driver.Params{"rootdirectory": root, "endpoint": url, "readconcurrency": tt.readconcurrent})
			r, err := d.Reader(t.Context(), path, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			mu.Lock()
			defer mu.Unlock()
			if tt.replace {
				if err == nil {
					t.Fatalf("read %d bytes of a file replaced mid-read without an error", len(got))
				}
				if !bytes.Equal(got, data[:len(got)]) {
					t.Fatalf("%d bytes read before the error differ from the old file's", len(got))
				}
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes (equal: %v), %v; GETs %q", len(got), bytes.Equal(got, data), err, gets)
			}
			resumed := slices.IndexFunc(gets[1:], func(g string) bool {
				return strings.HasPrefix(g, fmt.Sprintf("bytes=%d-", cut)) && !strings.HasSuffix(g, "generation=")
			})
			if resumed < 0 {
				t.Fatalf("GETs %q: none from byte %d of the first's generation", gets, cut)
			}
		})
	}
}

// flipWriter changes one byte of a body on its way, as a fault between
// GCS and Berth would.
type flipWriter struct {
	http.ResponseWriter
	at int // the byte to change, counted down
}

func (w *flipWriter) Write(p []byte) (int, error) {
	if w.at >= 0 && w.at < len(p) {
		p = bytes.Clone(p)
		p[w.at] ^= 0xff
	}
	w.at -= len(p)
	return w.ResponseWriter.Write(p)
}

// TestWholeObjectReadChecksCRC32C: a read of a whole object (one GET,
// readconcurrency 1) checks its bytes against the CRC32C GCS sends in
// X-Goog-Hash, and fails at the end rather than pass on other bytes.
func TestWholeObjectReadChecksCRC32C(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	data := pattern(minChunk + 4321)
	direct := newDriver(t, g, driver.Params{"rootdirectory": root})
	if err := direct.PutContent(t.Context(), "/f", data); err != nil {
		t.Fatal(err)
	}
	for _, flip := range []bool{false, true} {
		var hashes atomic.Int32
		url := testenv.StoreProxy(t, g.Endpoint, false, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.URL.Query().Get("alt") != "media" {
				next.ServeHTTP(w, r)
				return
			}
			at := -1
			if flip {
				at = 1000
			}
			next.ServeHTTP(&hashSpy{flipWriter: flipWriter{ResponseWriter: w, at: at}, seen: &hashes}, r)
		})
		d := newDriver(t, g, driver.Params{"rootdirectory": root, "endpoint": url, "readconcurrency": 1})
		r, err := d.Reader(t.Context(), "/f", 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if hashes.Load() == 0 {
			t.Fatal("the emulator sent no X-Goog-Hash: nothing to check against")
		}
		switch {
		case !flip && (err != nil || !bytes.Equal(got, data)):
			t.Fatalf("read %d bytes, %v; want the file", len(got), err)
		case flip && !errors.Is(err, errCorruptRead):
			t.Fatalf("read a changed byte: %d bytes, %v; want errCorruptRead", len(got), err)
		}
	}
}

// hashSpy counts the answers that carry X-Goog-Hash.
type hashSpy struct {
	flipWriter
	seen *atomic.Int32
}

func (h *hashSpy) WriteHeader(code int) {
	if h.Header().Get("X-Goog-Hash") != "" {
		h.seen.Add(1)
	}
	h.flipWriter.ResponseWriter.WriteHeader(code)
}

// TestNoObjectHasTheEmptyName: with no rootdirectory, the root's object
// name is empty, and the JSON API would answer a GET of it with the
// bucket's listing; the driver says not found instead of serving that.
func TestNoObjectHasTheEmptyName(t *testing.T) {
	g := testenv.StartGCS(t)
	d := newDriver(t, g, driver.Params{})
	if err := d.PutContent(t.Context(), "/"+rootFor(t.Name())+"/f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Reader(t.Context(), "/", 0); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Reader(/) = %v, want ErrNotFound", err)
	}
	if _, err := d.attrs(t.Context(), ""); !isNotExist(err) {
		t.Errorf("attrs of the empty name = %v, want not found", err)
	}
}
