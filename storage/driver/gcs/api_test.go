package gcs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// mediaServer answers the JSON API's media GET of the object "obj" of
// bucket "bkt" with data, generation 42, honouring Range as GCS does. cut
// decides, for the nth GET (1-based), after how many bytes of its body the
// stream breaks (a negative number: it does not).
func mediaServer(t *testing.T, data []byte, h2 bool, cut func(n int) int) (*Driver, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var gets []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/storage/v1/b/bkt/o/obj" || r.URL.Query().Get("alt") != "media" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		mu.Lock()
		gets = append(gets, r.Header.Get("Range")+" generation="+r.URL.Query().Get("generation"))
		n := len(gets)
		mu.Unlock()
		first, last := 0, len(data)-1
		status := http.StatusOK
		if rg := r.Header.Get("Range"); rg != "" {
			if _, err := fmt.Sscanf(rg, "bytes=%d-%d", &first, &last); err != nil {
				if _, err := fmt.Sscanf(rg, "bytes=%d-", &first); err != nil {
					http.Error(w, "bad range", http.StatusBadRequest)
					return
				}
				last = len(data) - 1
			}
			last = min(last, len(data)-1)
			status = http.StatusPartialContent
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(data)))
		}
		w.Header().Set("X-Goog-Generation", "42")
		w.Header().Set("Content-Type", blobContentType)
		w.Header().Set("Content-Length", fmt.Sprint(last-first+1))
		w.WriteHeader(status)
		body := data[first : last+1]
		if c := cut(n); c >= 0 && c < len(body) {
			w.Write(body[:c])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // HTTP/1: the connection closes; HTTP/2: RST_STREAM
		}
		w.Write(body)
	}))
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	d := &Driver{hc: srv.Client(), apiBase: srv.URL + "/storage/v1/b/bkt", bucketName: "bkt"}
	return d, &gets
}

// readObject reads "obj" whole and fails the test unless it is data.
func readObject(t *testing.T, d *Driver, data []byte, gets *[]string) {
	t.Helper()
	r, err := d.openRange(t.Context(), "obj", 0, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes (equal: %v), %v; GETs %q", len(got), len(data), bytes.Equal(got, data), err, *gets)
	}
}

// TestReadResumesEveryBreakThatFollowsProgress: a long download may break
// more often than maxAttempts times in all, as long as bytes arrive
// between the breaks; only reopenings without progress are bounded.
func TestReadResumesEveryBreakThatFollowsProgress(t *testing.T) {
	const step = 1000
	data := pattern(10 * step)
	d, gets := mediaServer(t, data, false, func(n int) int {
		if n <= 2*maxAttempts {
			return step // every answer breaks after step bytes
		}
		return -1
	})
	readObject(t, d, data, gets)
}

// TestReadResumesAfterAnHTTP2StreamReset: a read error that is neither a
// net.OpError nor an unexpected EOF, here an HTTP/2 stream error
// (RST_STREAM) from a client that speaks HTTP/2, is resumed too, as the
// client library's reader reopened after any read error.
func TestReadResumesAfterAnHTTP2StreamReset(t *testing.T) {
	data := pattern(3*minChunk + 777)
	d, gets := mediaServer(t, data, true, func(n int) int {
		if n == 1 {
			return minChunk + 123
		}
		return -1
	})
	readObject(t, d, data, gets)
	if len(*gets) != 2 || (*gets)[1] != fmt.Sprintf("bytes=%d-%d generation=42", minChunk+123, len(data)-1) {
		t.Fatalf("GETs %q", *gets)
	}
}

// TestStatSeesADirectoryBehindAnEmptyPage: GCS may answer a listing page
// with no entries and a nextPageToken ("the next page may be empty"); the
// client library's iterator went on to the next page, and so must Stat
// before it calls a directory missing.
func TestStatSeesADirectoryBehindAnEmptyPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/storage/v1/b/bkt/o/dir":
			http.Error(w, `{"error":{"code":404}}`, http.StatusNotFound)
		case r.URL.Path == "/storage/v1/b/bkt/o" && r.URL.Query().Get("pageToken") == "":
			fmt.Fprint(w, `{"kind":"storage#objects","nextPageToken":"t1"}`)
		case r.URL.Path == "/storage/v1/b/bkt/o" && r.URL.Query().Get("pageToken") == "t1":
			fmt.Fprint(w, `{"kind":"storage#objects","items":[{"name":"dir/f"}]}`)
		default:
			http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	d := &Driver{hc: srv.Client(), apiBase: srv.URL + "/storage/v1/b/bkt", bucketName: "bkt"}
	fi, err := d.Stat(t.Context(), "/dir")
	if err != nil || !fi.IsDir {
		t.Fatalf("Stat: %+v, %v", fi, err)
	}
}

// TestRetryableTransportErrors: the connection failures Go's HTTP/1 and
// HTTP/2 transports report without a net.OpError, which Google's client
// retried ("server closed idle connection", "client connection lost"),
// are retried; a refusal is not. net/http returns "server closed idle
// connection" for a POST whose bytes crossed the server's FIN (see
// errServerClosedIdle in net/http/transport.go), which no test server can
// provoke on demand.
func TestRetryableTransportErrors(t *testing.T) {
	wrap := func(s string) error { return &url.Error{Op: "Post", URL: "https://x", Err: errors.New(s)} }
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{wrap("http: server closed idle connection"), true},
		{wrap("http2: client connection lost"), true},
		{wrap(`http2: server sent GOAWAY and closed the connection; LastStreamID=1, ErrCode=NO_ERROR, debug=""`), true},
		{wrap("http2: Transport: cannot retry err [http2: client connection lost] after Request.Body was written; define Request.GetBody to avoid this error"), true},
		{&statusError{op: "x", code: http.StatusNotFound}, false},
		{&statusError{op: "x", code: http.StatusServiceUnavailable}, true},
		{wrap("unsupported protocol scheme"), false},
	} {
		if got := retryable(context.Background(), tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestUploadRefusedWhenStoredBytesDiffer: an upload whose answer carries
// another CRC32C than the bytes sent (an emulator or proxy that changed
// them; GCS itself refuses such an upload) fails with errCorruptUpload.
func TestUploadRefusedWhenStoredBytesDiffer(t *testing.T) {
	data := []byte("the bytes sent")
	for _, tt := range []struct {
		answered string
		want     error
	}{
		{crc32c(data), nil},
		{crc32c([]byte("other bytes")), errCorruptUpload},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, `{"name":"k","crc32c":%q}`, tt.answered)
		}))
		d := &Driver{hc: srv.Client(), uploadBase: srv.URL + "/upload/storage/v1/b/bkt/o"}
		if err := d.insert(t.Context(), "k", data, nil, false); !errors.Is(err, tt.want) {
			t.Errorf("answer with crc32c %s: %v, want %v", tt.answered, err, tt.want)
		}
		srv.Close()
	}
}
