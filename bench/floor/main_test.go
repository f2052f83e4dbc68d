package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestKeptBlobIsServedWhole checks that the floor serves back what a big
// monolithic PUT sent, and that a small one is dropped (its GET gets the
// stand-in 1 KiB answer), since scenario 1 pulls what its setup pushed.
func TestKeptBlobIsServedWhole(t *testing.T) {
	t.Chdir(t.TempDir())
	srv := httptest.NewServer(http.HandlerFunc(new(floor).serve))
	defer srv.Close()
	for _, tc := range []struct {
		size, want int
	}{
		{size: keepFrom + 12345, want: keepFrom + 12345},
		{size: 4096, want: 1024},
	} {
		body := make([]byte, tc.size)
		_, _ = rand.Read(body)
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(body))
		req, err := http.NewRequest(http.MethodPut, srv.URL+"/v2/floor/blobs/uploads/x?digest="+d, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT of %d bytes: status %d", tc.size, resp.StatusCode)
		}
		resp, err = http.Get(srv.URL + "/v2/bench/pull/blobs/" + d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(got) != tc.want {
			t.Fatalf("GET after a PUT of %d bytes: status %d, %d bytes (%v), want %d", tc.size, resp.StatusCode, len(got), err, tc.want)
		}
		if tc.want == tc.size && !bytes.Equal(got, body) {
			t.Errorf("GET of the kept %d bytes returned other bytes", tc.size)
		}
	}
}
