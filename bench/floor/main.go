// Command floor is a measuring stick for the request-rate scenarios of the
// benchmark, not a registry: a net/http server that does no work at all
// but answer a blob HEAD or GET with the headers Berth sends, so that
// `go run ./bench -run '^6$' -berth <floor>` shows how far net/http alone
// goes on the machine, against Distribution, under the same load generator.
//
// It takes the harness's command line (`serve CONFIG`, ignored) and
// REGISTRY_HTTP_ADDR, accepts any upload (so the scenario's setup passes)
// without storing it, and answers every other request with 200 and the
// headers of a 1 KiB blob. It logs nothing.
package main

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"strings"
)

func main() {
	addr := os.Getenv("REGISTRY_HTTP_ADDR")
	if addr == "" {
		fmt.Fprintln(os.Stderr, "floor: REGISTRY_HTTP_ADDR is not set")
		os.Exit(2)
	}
	if err := http.ListenAndServe(addr, http.HandlerFunc(serve)); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

var (
	nosniff = []string{"nosniff"}
	version = []string{"registry/2.0"}
	octets  = []string{"application/octet-stream"}
	ranges  = []string{"bytes"}
	forever = []string{"max-age=31536000"}
	size    = []string{"1024"}
)

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// What Berth sets on every response: the config's http.headers (the
	// registry:2 config has X-Content-Type-Options), the API version and
	// the request id.
	h["X-Content-Type-Options"] = nosniff
	h["Docker-Distribution-Api-Version"] = version
	h.Set("X-Request-Id", rand.Text())
	switch {
	case r.Method == http.MethodPost:
		h.Set("Location", "/v2/floor/blobs/uploads/"+rand.Text())
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPut:
		w.WriteHeader(http.StatusCreated)
	case strings.Contains(r.URL.Path, "/blobs/sha"):
		d := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		h["Docker-Content-Digest"] = []string{d}
		h["Etag"] = []string{`"` + d + `"`}
		h["Content-Type"] = octets
		h["Accept-Ranges"] = ranges
		h["Cache-Control"] = forever
		h["Content-Length"] = size
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(make([]byte, 1024))
		}
	default:
		w.WriteHeader(http.StatusOK)
	}
}
