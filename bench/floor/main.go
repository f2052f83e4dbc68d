// Command floor is a measuring stick for the benchmark, not a registry: a
// net/http server that does no work at all but answer a blob HEAD or GET
// with the headers Berth sends, so that `go run ./bench -run '^(1|6)$'
// -berth <floor>` shows how far net/http alone goes on the machine, against
// Distribution, under the same load generator.
//
// It takes the harness's command line (`serve CONFIG`, ignored) and
// REGISTRY_HTTP_ADDR. It accepts any upload, so a scenario's setup passes;
// a monolithic PUT of a body over 1 MiB is kept in its working directory
// and a GET of that digest sends the file as net/http does with an
// *os.File (sendfile), the ceiling of scenario 1. Every other request gets
// 200 and the headers of a 1 KiB blob. It logs nothing.
//
// With FLOOR_SERVER=raw in the environment it answers without net/http
// (see serveRaw), to size what an HTTP server of our own would buy. With
// FLOOR_SERVER=registry it is the least registry docker can push to and
// pull from (see miniRegistry), to size row 10b; with FLOOR_SERVER=durable
// the least that keeps Distribution's layout and survives a crash.
package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := os.Getenv("REGISTRY_HTTP_ADDR")
	if addr == "" {
		fmt.Fprintln(os.Stderr, "floor: REGISTRY_HTTP_ADDR is not set")
		os.Exit(2)
	}
	var err error
	switch mode := os.Getenv("FLOOR_SERVER"); mode {
	case "", "net/http":
		err = http.ListenAndServe(addr, http.HandlerFunc(new(floor).serve))
	case "raw":
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			err = serveRaw(ln)
		}
	case "registry", "durable":
		m := newMiniRegistry(".")
		m.layout = mode == "durable"
		err = http.ListenAndServe(addr, http.HandlerFunc(m.serve))
	default:
		err = fmt.Errorf("FLOOR_SERVER is %q; want net/http, raw, registry or durable", mode)
	}
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(1)
}

var (
	nosniff = []string{"nosniff"}
	version = []string{"registry/2.0"}
	octets  = []string{"application/octet-stream"}
	ranges  = []string{"bytes"}
	forever = []string{"max-age=31536000"}
	size    = []string{"1024"}
)

// uploadPath starts the Location of an upload the floor "started".
const uploadPath = "/v2/floor/blobs/uploads/"

// floor is the net/http stand-in; it remembers the big bodies it kept.
type floor struct {
	// kept holds the digests of the bodies kept, so that a request for any
	// other blob (every HEAD of row 6) makes no system call to find out.
	kept sync.Map
}

func (fl *floor) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// What Berth sets on every response: the config's http.headers (the
	// registry:2 config has X-Content-Type-Options), the API version and
	// the request id.
	h["X-Content-Type-Options"] = nosniff
	h["Docker-Distribution-Api-Version"] = version
	h.Set("X-Request-Id", rand.Text())
	switch {
	case r.Method == http.MethodPost:
		h.Set("Location", uploadPath+rand.Text())
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPut:
		if err := fl.keep(r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case strings.Contains(r.URL.Path, "/blobs/sha"):
		d := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		h["Docker-Content-Digest"] = []string{d}
		h["Etag"] = []string{`"` + d + `"`}
		h["Content-Type"] = octets
		h["Accept-Ranges"] = ranges
		h["Cache-Control"] = forever
		if _, ok := fl.kept.Load(d); ok {
			if f, err := os.Open(keptName(d)); err == nil {
				defer f.Close()
				http.ServeContent(w, r, "", time.Time{}, f)
				return
			}
		}
		h["Content-Length"] = size
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(make([]byte, 1024))
		}
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// keepFrom is the body size from which a PUT's body is kept.
const keepFrom = 1 << 20

// keep stores the body of a big monolithic PUT under its digest; small
// and bodiless ones are read and dropped.
func (fl *floor) keep(r *http.Request) error {
	d := r.URL.Query().Get("digest")
	if r.ContentLength < keepFrom || !strings.HasPrefix(d, "sha256:") || strings.ContainsAny(d, "/.") {
		_, err := io.Copy(io.Discard, r.Body)
		return err
	}
	f, err := os.CreateTemp(".", "put-")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), keptName(d))
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	fl.kept.Store(d, struct{}{})
	return nil
}

func keptName(digest string) string { return "blob-" + strings.TrimPrefix(digest, "sha256:") }
