package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
)

// TestServeRefusesOversizedHeadersWith431 sends headers a little under
// and far over the limit: a bearer token of tens of KiB (as a token with
// many scopes is) still works, a request with more is refused before any
// handler sees it.
func TestServeRefusesOversizedHeadersWith431(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs berth")
	}
	addr := testenv.StartBerth(t, "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+t.TempDir()+"\n")
	tests := []struct {
		name   string
		header string
		size   int
		want   int
	}{
		{"large bearer token", "Authorization", 48 << 10, http.StatusOK},
		{"user agent past the limit", "User-Agent", maxHeaderBytes + 8<<10, http.StatusRequestHeaderFieldsTooLarge},
		{"a megabyte of user agent", "User-Agent", 1 << 20, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
			if err != nil {
				t.Fatal(err)
			}
			value := strings.Repeat("x", tt.size)
			if tt.header == "Authorization" {
				value = "Bearer " + value
			}
			req.Header.Set(tt.header, value)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%d bytes of %s: %s, want %d", tt.size, tt.header, resp.Status, tt.want)
			}
		})
	}
}
