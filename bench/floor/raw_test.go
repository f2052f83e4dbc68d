package main

import (
	"bufio"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"slices"
	"strings"
	"testing"
	"time"
)

const rawDigest = "sha256:4355a46b19d348dc2f57c046f8ef63d4538ebb936000f3c9ee954a27460dd865"

// startRaw serves the raw responder on a loopback port until the test ends.
func startRaw(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { _ = serveRaw(ln) }()
	return ln.Addr().String()
}

// TestRawAnswersLikeTheFloor sends a setup's POST and PUT, then the HEAD
// and GET of scenarios 5 and 6, to the net/http floor and to the raw
// responder: each answer must have the same status, header keys and body
// length from both, and the raw one must keep its connection alive.
func TestRawAnswersLikeTheFloor(t *testing.T) {
	t.Chdir(t.TempDir())
	floor := httptest.NewServer(http.HandlerFunc(new(floor).serve))
	defer floor.Close()
	raw := "http://" + startRaw(t)

	type answer struct {
		status  int
		keys    []string
		bodyLen int
		header  http.Header
	}
	do := func(c *http.Client, base, method, path, body string, trace *httptrace.ClientTrace) answer {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s%s: %v", method, base, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s%s: %v", method, base, path, err)
		}
		return answer{resp.StatusCode, slices.Sorted(maps.Keys(resp.Header)), len(b), resp.Header}
	}

	conns := 0
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			conns++
		}
	}}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/v2/bench/r/blobs/uploads/", ""},
		{http.MethodPut, "/v2/bench/r/blobs/uploads/x?digest=" + rawDigest, strings.Repeat("x", 5000)},
		{http.MethodHead, "/v2/bench/r/blobs/" + rawDigest, ""},
		{http.MethodGet, "/v2/bench/r/blobs/" + rawDigest, ""},
	} {
		want := do(c, floor.URL, tc.method, tc.path, tc.body, &httptrace.ClientTrace{})
		got := do(c, raw, tc.method, tc.path, tc.body, trace)
		if got.status != want.status || !slices.Equal(got.keys, want.keys) || got.bodyLen != want.bodyLen {
			t.Errorf("%s %s: raw answers %d %v with %d body bytes; the floor %d %v with %d", tc.method, tc.path,
				got.status, got.keys, got.bodyLen, want.status, want.keys, want.bodyLen)
		}
		for _, k := range []string{"Docker-Content-Digest", "Etag", "Content-Length"} {
			if g, w := got.header.Get(k), want.header.Get(k); g != w {
				t.Errorf("%s %s: raw %s %q, the floor's %q", tc.method, tc.path, k, g, w)
			}
		}
	}
	if conns != 1 {
		t.Errorf("the requests to the raw responder used %d connections, want one kept alive", conns)
	}
}

// TestRawReadsRequestsHoweverTheyArrive writes requests on one connection
// split across reads and pipelined, and a chunked one, which is refused.
func TestRawReadsRequestsHoweverTheyArrive(t *testing.T) {
	conn, err := net.Dial("tcp", startRaw(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	head := "HEAD /v2/bench/r/blobs/" + rawDigest + " HTTP/1.1\r\nHost: x\r\n"
	expect := func(what string, status int, digest string) {
		t.Helper()
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		resp.Body.Close()
		if resp.StatusCode != status || resp.Header.Get("Docker-Content-Digest") != digest {
			t.Errorf("%s: %d with digest %q, want %d with %q", what, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), status, digest)
		}
	}
	write := func(s string) {
		if _, err := io.WriteString(conn, s); err != nil {
			t.Fatal(err)
		}
	}

	// The rest of the header arrives in a later read, which moves what is
	// buffered over the request line.
	write(head)
	time.Sleep(50 * time.Millisecond)
	write("X-Pad: " + strings.Repeat("p", 200) + "\r\n\r\n")
	expect("a HEAD split across reads", http.StatusOK, rawDigest)

	write(head + "\r\n" + head + "\r\n")
	expect("the first of two pipelined HEADs", http.StatusOK, rawDigest)
	expect("the second of two pipelined HEADs", http.StatusOK, rawDigest)

	write("POST /v2/bench/r/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	expect("a chunked POST", http.StatusNotImplemented, "")
}
