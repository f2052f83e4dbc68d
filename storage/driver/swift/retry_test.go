package swift

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
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
