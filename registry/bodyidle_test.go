package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	_ "github.com/berth-registry/berth/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
)

// logBuffer collects JSON log records from the server under test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// find returns the first record with message msg for which match (when
// not nil) is true, or nil.
func (b *logBuffer) find(msg string, match func(map[string]any) bool) map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	for line := range strings.SplitSeq(b.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg && (match == nil || match(rec)) {
			return rec
		}
	}
	return nil
}

// await polls for a record as find returns it, for at most bound: a log
// line written after the response may come after the client has it.
func (b *logBuffer) await(t *testing.T, msg string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	for end := time.Now().Add(testBound); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if rec := b.find(msg, match); rec != nil {
			return rec
		}
	}
	t.Fatalf("no %q log record within %s", msg, testBound)
	return nil
}

// testBound is how long a test waits for the server before it calls the
// server stuck. It is no timing assertion: the behaviour under test ends
// far sooner, and only a hang reaches it.
const testBound = 20 * time.Second

// idleServer is the API over the filesystem driver with a short body
// idle timeout, its log, and a client for it.
type idleServer struct {
	srv    *httptest.Server
	client *http.Client
	logs   *logBuffer
	root   string
}

func newIdleServer(t *testing.T, http2 bool, opts Options) *idleServer {
	t.Helper()
	root := t.TempDir()
	d, err := driver.Open(context.Background(), "filesystem", driver.Params{"rootdirectory": root})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.BodyIdleTimeout = 300 * time.Millisecond
	srv := httptest.NewUnstartedServer(New(storage.New(d, storage.Options{}, log), opts, log))
	if http2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return &idleServer{srv: srv, client: srv.Client(), logs: logs, root: root}
}

// do sends a request through the server's client and reads the answer.
func (s *idleServer) do(t *testing.T, method, url string, body []byte, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

// stallHTTP1 writes, on a raw connection, the headers of a PATCH of
// total bytes and the first part of its body, then nothing; it returns
// the status of the answer.
func stallHTTP1(t *testing.T, s *idleServer, loc string, total int, part []byte) int {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
		u.RequestURI(), u.Host, total)
	if _, err := conn.Write(part); err != nil {
		t.Fatal(err)
	}
	// Now nothing more: the connection stays open and silent.
	_ = conn.SetReadDeadline(time.Now().Add(testBound))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the server still holds the stalled PATCH after %s: %v", testBound, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stallHTTP2 sends a PATCH of total bytes on an HTTP/2 stream whose body
// gives the first part and then blocks until the test ends.
func stallHTTP2(t *testing.T, s *idleServer, loc string, total int, part []byte) int {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go func() { _, _ = pw.Write(part) }()
	req, err := http.NewRequest("PATCH", loc, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(total)
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	resp, err := s.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("the server still holds the stalled PATCH after %s: %v", testBound, err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("answered over %s, want HTTP/2", resp.Proto)
	}
	return resp.StatusCode
}

// TestStalledPatchEndsAndStaysResumable plays a client that sends the
// headers and part of a PATCH body and then sends nothing: the server
// must end the request after the idle timeout, log it, release the
// upload's file and keep what arrived, so the session resumes where the
// bytes stopped.
func TestStalledPatchEndsAndStaysResumable(t *testing.T) {
	tests := []struct {
		name  string
		http2 bool
		stall func(t *testing.T, s *idleServer, loc string, total int, part []byte) int
	}{
		{"HTTP/1.1", false, stallHTTP1},
		{"HTTP/2", true, stallHTTP2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newIdleServer(t, tt.http2, Options{})
			blob := make([]byte, 100_000)
			_, _ = rand.Read(blob)
			const sent = 40_000

			res := s.do(t, "POST", s.srv.URL+"/v2/stall/app/blobs/uploads/", nil)
			res.expect(t, http.StatusAccepted, "")
			loc := res.header.Get("Location")
			id := res.header.Get("Docker-Upload-UUID")

			if status := tt.stall(t, s, loc, len(blob), blob[:sent]); status != http.StatusBadRequest {
				t.Fatalf("stalled PATCH: status %d, want 400", status)
			}
			rec := s.logs.await(t, "request body idle timeout", nil)
			// All that was sent has normally been read before the stall;
			// a machine too loaded to read it within the idle time may
			// have read less, and the session must then stand there.
			got, _ := rec["bytes"].(float64)
			if rec["repo"] != "stall/app" || rec["upload"] != id || got <= 0 || got > sent || rec["level"] != "WARN" {
				t.Fatalf("log record %v, want repo stall/app, upload %s, bytes up to %d at WARN", rec, id, sent)
			}
			received := int(got)
			s.logs.await(t, "request", func(rec map[string]any) bool { return rec["method"] == "PATCH" }) // the handler has returned
			if open := openFilesUnder(t, s.root); len(open) > 0 {
				t.Fatalf("files still open after the stalled request ended: %q", open)
			}

			s.do(t, "GET", loc, nil).expectHeader(t, "Range", "0-"+strconv.Itoa(received-1))
			res = s.do(t, "PATCH", loc, blob[received:], "Content-Range", fmt.Sprintf("%d-%d", received, len(blob)-1))
			res.expect(t, http.StatusAccepted, "")
			want := digest.FromBytes(blob)
			s.do(t, "PUT", withDigest(res.header.Get("Location"), want), nil).expect(t, http.StatusCreated, "")
			pulled := s.do(t, "GET", s.srv.URL+"/v2/stall/app/blobs/"+want.String(), nil)
			pulled.expect(t, http.StatusOK, "")
			if !bytes.Equal(pulled.body, blob) {
				t.Fatal("the resumed blob does not hold the bytes pushed")
			}
		})
	}
}

// TestStalledBodyOfRefusedRequestDoesNotHoldTheConnection sends the
// headers of a PATCH that is refused before its body is read, and part
// of the body: net/http reads what is left of a small body after the
// handler, before it sends the answer, to keep the connection; without a
// deadline it would wait on the silent client for good, and the client
// would never see its 403.
func TestStalledBodyOfRefusedRequestDoesNotHoldTheConnection(t *testing.T) {
	refuse := func(http.ResponseWriter, *http.Request, []Access) (*http.Request, error) {
		return nil, &Error{Code: CodeDenied}
	}
	s := newIdleServer(t, false, Options{Authorize: refuse})
	conn, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH /v2/app/blobs/uploads/x HTTP/1.1\r\nHost: registry\r\nContent-Length: 1000\r\n\r\n0123456789")
	_ = conn.SetReadDeadline(time.Now().Add(testBound))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer after %s: %v", testBound, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	if rest, err := io.ReadAll(br); err != nil {
		t.Fatalf("the server still holds the connection after %s: %v (read %q)", testBound, err, rest)
	} else if len(rest) > 0 {
		t.Fatalf("after the answer: %q", rest)
	}
}

// openFilesUnder lists the files this process holds open below dir.
func openFilesUnder(t *testing.T, dir string) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		return nil
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			open = append(open, target)
		}
	}
	return open
}
