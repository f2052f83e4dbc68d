package swift

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncw/swift/v2"
)

func TestTransportRetriesThrottlingAndServerErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failures  []int
		wantCode  int
		wantCalls int32
	}{
		{"RateLimited", []int{498, 429}, 200, 3},
		{"Unavailable", []int{503, 500, 502}, 200, 4},
		{"ClientErrorNotRetried", []int{404}, 404, 1},
		{"GivesUpAfterRetries", []int{503, 503, 503, 503, 503, 503, 503}, 503, retries + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				b, _ := io.ReadAll(r.Body)
				if string(b) != "body" {
					t.Errorf("call %d got body %q", n, b)
				}
				if n < len(tc.failures) {
					w.WriteHeader(tc.failures[n])
					return
				}
				w.WriteHeader(http.StatusOK)
			}))
			defer srv.Close()
			c := &http.Client{Transport: &retrying{next: http.DefaultTransport}}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL, strings.NewReader("body"))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || calls.Load() != tc.wantCalls {
				t.Fatalf("status %d after %d calls, want %d after %d", resp.StatusCode, calls.Load(), tc.wantCode, tc.wantCalls)
			}
		})
	}
}

// TestPutCutsOffABodyTheClientGaveUpOn: when the Swift client times out it
// returns while its request goes on sending the body. The body is a pooled
// buffer another writer refills once put returns, so what the request sends
// after that must not reach the server.
func TestPutCutsOffABodyTheClientGaveUpOn(t *testing.T) {
	const size = 32 << 20 // far more than the socket buffers hold
	stall := make(chan struct{})
	type result struct {
		got []byte
		err error
	}
	received := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet { // v1 authentication
			w.Header().Set("X-Storage-Url", "http://"+r.Host+"/v1/AUTH_test")
			w.Header().Set("X-Auth-Token", "token")
			return
		}
		first := make([]byte, 1) // lets the client past Expect: 100-continue
		if _, err := io.ReadFull(r.Body, first); err != nil {
			received <- result{err: err}
			return
		}
		<-stall // reads nothing until put has returned
		rest, err := io.ReadAll(r.Body)
		received <- result{append(first, rest...), err}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()

	d := &Driver{
		cfg: &config{Params: Params{Container: "c"}},
		conn: &swift.Connection{
			UserName: "u", ApiKey: "k", AuthUrl: srv.URL + "/auth/v1.0",
			Transport:      &retrying{next: http.DefaultTransport.(*http.Transport).Clone()},
			ConnectTimeout: 10 * time.Second,
			Timeout:        300 * time.Millisecond, // without a body read
		},
	}
	data := bytes.Repeat([]byte{'a'}, size)
	err := d.put(t.Context(), "o", data, nil)
	if !errors.Is(err, swift.TimeoutError) {
		close(stall)
		t.Fatalf("put = %v, want a timeout", err)
	}
	// What a writer reusing the buffer would do now.
	for i := range data {
		data[i] = 'b'
	}
	close(stall)
	r := <-received
	if i := bytes.IndexByte(r.got, 'b'); i >= 0 {
		t.Fatalf("server received bytes written into the buffer after put returned, from offset %d (body error %v)", i, r.err)
	}
	if r.err == nil {
		t.Fatalf("server received a complete body of %d bytes, want it cut off", len(r.got))
	}
}

// TestAloneKeepsSwiftsStrayBodyOffTheNextRequest plays Swift's proxy: a
// HEAD gets 204 and, a moment later on the same connection, the chunked
// terminator it should not have sent. A request made right after a HEAD
// marked alone must still get its own response.
func TestAloneKeepsSwiftsStrayBodyOffTheNextRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveLikeSwift(c)
		}
	}()
	client := &http.Client{Transport: &retrying{next: http.DefaultTransport.(*http.Transport).Clone()}}
	url := "http://" + ln.Addr().String() + "/v1/AUTH_test/c"
	for i := range 20 {
		req, _ := http.NewRequestWithContext(alone(t.Context()), http.MethodHead, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("HEAD %d: %v", i, err)
		}
		resp.Body.Close()
		req, _ = http.NewRequestWithContext(t.Context(), http.MethodPut, url, nil)
		resp, err = client.Do(req)
		if err != nil {
			t.Fatalf("PUT %d after a HEAD: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %d: status %d", i, resp.StatusCode)
		}
	}
}

// serveLikeSwift answers HEAD with 204 and a late "0\r\n\r\n", anything
// else with 201, until the client closes the connection.
func serveLikeSwift(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if req.Method == http.MethodHead {
			_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n")
			time.Sleep(20 * time.Millisecond)
			_, _ = io.WriteString(c, "0\r\n\r\n")
		} else {
			_, _ = io.WriteString(c, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
		}
		if req.Close {
			return
		}
	}
}
