package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
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

// TestStalledPatchEndsAndStaysResumable plays a client that sends the
// headers and part of a PATCH body and then sends nothing: the server
// must end the request after the idle timeout, log it, release the
// upload's file and keep what arrived, so the session resumes where the
// bytes stopped.
func TestStalledPatchEndsAndStaysResumable(t *testing.T) {
	root := t.TempDir()
	d, err := driver.Open(context.Background(), "filesystem", driver.Params{"rootdirectory": root})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := storage.New(d, storage.Options{}, log)
	srv := httptest.NewServer(New(reg, Options{BodyIdleTimeout: 300 * time.Millisecond}, log))
	t.Cleanup(srv.Close)
	s := &testServer{t: t, srv: srv, reg: reg}

	blob := make([]byte, 100_000)
	_, _ = rand.Read(blob)
	const sent = 40_000

	res := s.do("POST", "/v2/stall/app/blobs/uploads/", nil)
	res.expect(t, http.StatusAccepted, "")
	loc := res.header.Get("Location")
	id := res.header.Get("Docker-Upload-UUID")
	u, err := http.NewRequest("PATCH", loc, nil)
	if err != nil {
		t.Fatal(err)
	}

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
		u.URL.RequestURI(), u.URL.Host, len(blob))
	if _, err := conn.Write(blob[:sent]); err != nil {
		t.Fatal(err)
	}
	// Now nothing more: the connection stays open and silent.
	_ = conn.SetReadDeadline(time.Now().Add(testBound))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the server still holds the stalled PATCH after %s: %v", testBound, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("stalled PATCH: status %d, want 400", resp.StatusCode)
	}

	rec := logs.await(t, "request body idle timeout", nil)
	// All that was sent has normally been read before the stall; a
	// machine too loaded to read it within the idle time may have read
	// less, and the session must then stand at what was read.
	got, _ := rec["bytes"].(float64)
	if rec["repo"] != "stall/app" || rec["upload"] != id || got <= 0 || got > sent || rec["level"] != "WARN" {
		t.Fatalf("log record %v, want repo stall/app, upload %s, bytes up to %d at WARN", rec, id, sent)
	}
	received := int(got)
	logs.await(t, "request", func(rec map[string]any) bool { return rec["method"] == "PATCH" }) // the handler has returned
	if open := openFilesUnder(t, root); len(open) > 0 {
		t.Fatalf("files still open after the stalled request ended: %q", open)
	}

	s.do("GET", loc, nil).expectHeader(t, "Range", "0-"+strconv.Itoa(received-1))
	res = s.do("PATCH", loc, blob[received:], "Content-Range", fmt.Sprintf("%d-%d", received, len(blob)-1))
	res.expect(t, http.StatusAccepted, "")
	want := digest.FromBytes(blob)
	s.do("PUT", withDigest(res.header.Get("Location"), want), nil).expect(t, http.StatusCreated, "")
	pulled := s.do("GET", "/v2/stall/app/blobs/"+want.String(), nil)
	pulled.expect(t, http.StatusOK, "")
	if !bytes.Equal(pulled.body, blob) {
		t.Fatal("the resumed blob does not hold the bytes pushed")
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
