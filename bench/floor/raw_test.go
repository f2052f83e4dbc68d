package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
)

// TestRawAnswersLikeTheFloor drives the raw responder with net/http's
// client through one kept-alive connection: a setup's POST and PUT, then
// the HEAD and GET of scenarios 5 and 6, each with the header keys Berth
// sends; a chunked body is refused rather than misread.
func TestRawAnswersLikeTheFloor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { _ = serveRaw(ln) }()
	base := "http://" + ln.Addr().String()
	const d = "sha256:4355a46b19d348dc2f57c046f8ef63d4538ebb936000f3c9ee954a27460dd865"

	conns := 0
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			conns++
		}
	}}
	ids := map[string]bool{}
	for _, tc := range []struct {
		method, path string
		body         io.Reader
		status       int
		header       map[string]string
		bodyLen      int
	}{
		{http.MethodPost, "/v2/bench/r/blobs/uploads/", nil, http.StatusAccepted, map[string]string{"Content-Length": "0"}, 0},
		{http.MethodPut, "/v2/bench/r/blobs/uploads/x?digest=" + d, strings.NewReader(strings.Repeat("x", 5000)), http.StatusCreated, nil, 0},
		{http.MethodHead, "/v2/bench/r/blobs/" + d, nil, http.StatusOK, map[string]string{"Content-Length": "1024", "Docker-Content-Digest": d, "Etag": `"` + d + `"`}, 0},
		{http.MethodGet, "/v2/bench/r/blobs/" + d, nil, http.StatusOK, map[string]string{"Content-Type": "application/octet-stream"}, 1024},
	} {
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), tc.method, base+tc.path, tc.body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || len(b) != tc.bodyLen {
			t.Fatalf("%s %s: status %d, %d body bytes (%v), want %d and %d", tc.method, tc.path, resp.StatusCode, len(b), err, tc.status, tc.bodyLen)
		}
		for k, v := range tc.header {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s %s: %s is %q, want %q", tc.method, tc.path, k, got, v)
			}
		}
		for _, k := range []string{"Date", "Docker-Distribution-Api-Version", "X-Content-Type-Options"} {
			if resp.Header.Get(k) == "" {
				t.Errorf("%s %s: no %s", tc.method, tc.path, k)
			}
		}
		id := resp.Header.Get("X-Request-Id")
		if id == "" || ids[id] {
			t.Errorf("%s %s: X-Request-Id %q is empty or repeated", tc.method, tc.path, id)
		}
		ids[id] = true
		if tc.method == http.MethodPost && !strings.HasPrefix(resp.Header.Get("Location"), "/v2/") {
			t.Errorf("POST: Location %q", resp.Header.Get("Location"))
		}
	}
	if conns != 1 {
		t.Errorf("the requests used %d connections, want one kept alive", conns)
	}

	// A body of unknown length goes chunked.
	resp, err := http.Post(base+"/v2/bench/r/blobs/uploads/y", "application/octet-stream", io.MultiReader(strings.NewReader("abc")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("chunked POST: status %d, want 501", resp.StatusCode)
	}
}
