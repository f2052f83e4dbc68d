package registry

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage"
)

// ServeHTTP is the outermost layer: common headers, a request id, panic
// recovery and one log line per request around dispatch.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	growStack(0)
	start := time.Now()
	id := rand.Text()
	h := w.Header()
	for k, vs := range a.opts.Headers {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	h["Docker-Distribution-Api-Version"] = apiVersion
	h.Set("X-Request-Id", id)
	rw := &responseWriter{ResponseWriter: w}
	if a.warns {
		rw.warnings = new(storage.Warnings)
		r = r.WithContext(storage.WithWarnings(r.Context(), rw.warnings))
	}
	log := requestLog(a.log, id)
	var body *requestBody
	if r.Body != nil && r.Body != http.NoBody {
		body = newRequestBody(w, r.Body, a.opts.BodyIdleTimeout)
		r.Body = body
	}
	// Everything after this point (the Authorizer, events, the log line)
	// sees the client, not the proxy.
	r, peer := a.fromClient(r)
	var observed func(RequestInfo)
	if a.opts.Observe != nil {
		var r2 *http.Request
		r2, observed = a.opts.Observe(r)
		if r2 != nil {
			r = r2
		}
	}

	// Headers and the query are never logged: they carry credentials
	// (Authorization, a token in a query string).
	defer func() {
		p := recover()
		if p != nil && p != http.ErrAbortHandler {
			writeError(rw, r, log, &Error{Code: CodeUnknown, Err: fmt.Errorf("panic: %v\n%s", p, debug.Stack())})
		}
		if p == http.ErrAbortHandler {
			// An aborted response is still observed and logged first, so
			// gauges and spans are not left open.
			defer panic(p)
		}
		info := RequestInfo{
			Method:        r.Method,
			Route:         rw.route,
			Handler:       handlerNames[rw.kind],
			Repository:    rw.repo,
			User:          rw.user,
			RequestID:     id,
			Status:        rw.status(),
			BytesOut:      rw.bytes,
			Duration:      time.Since(start),
			UploadStarted: rw.uploadStarted,
		}
		if body != nil {
			body.finish()
			info.BytesIn = body.n
			if body.timedOut {
				a.logBodyTimeout(r, log, body)
			}
		}
		if observed != nil {
			observed(info)
		}
		if a.opts.AccessLogDisabled {
			return
		}
		// An array, not a growing slice, keeps the line free of
		// allocations when there is no proxy to add.
		attrs := [10]slog.Attr{
			slog.String("method", info.Method),
			slog.String("route", info.Route),
			slog.String("repo", info.Repository),
			slog.String("user", info.User),
			slog.Int("status", info.Status),
			slog.Int64("bytes_in", info.BytesIn),
			slog.Int64("bytes", info.BytesOut),
			slog.Duration("duration", info.Duration),
			slog.String("remote", r.RemoteAddr),
		}
		n := 9
		if peer != "" {
			attrs[n] = slog.String("proxy", peer)
			n++
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs[:n]...)
	}()

	if err := a.dispatch(rw, r, log); err != nil {
		writeError(rw, r, log, err)
	}
}

// logBodyTimeout says which request a stalled body ended and how much of
// it arrived: for an upload, where its session now stands.
func (a *api) logBodyTimeout(r *http.Request, log *slog.Logger, body *requestBody) {
	t, _ := parsePath(strings.TrimPrefix(r.URL.Path, a.opts.Prefix))
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("repo", t.name),
		slog.Int64("bytes", body.n),
		slog.Duration("idle", body.idle),
		slog.String("remote", r.RemoteAddr),
	}
	if t.kind == kindUpload {
		attrs = append(attrs, slog.String("upload", t.ref))
	}
	log.LogAttrs(r.Context(), slog.LevelWarn, "request body idle timeout", attrs...)
}

// apiVersion is the value of Docker-Distribution-API-Version, shared by
// every response (see setBlobHeaders).
var apiVersion = []string{"registry/2.0"}

// responseWriter records what the log line needs. It keeps the
// io.ReaderFrom of the connection so blob bodies still go out with
// sendfile, and unwraps for http.ResponseController.
type responseWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
	bytes       int64
	route, repo string
	kind        kind
	user        string
	// uploadStarted is set by a request that completes an upload.
	uploadStarted time.Time
	// warnings are what storage said of its answer (a stale copy), sent
	// as Warning headers.
	warnings *storage.Warnings
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.addWarnings()
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// addWarnings sets a Warning header, in the form the distribution spec
// asks (code 299, no agent), for each warning storage gave.
func (w *responseWriter) addWarnings() {
	if w.warnings == nil {
		return
	}
	for _, m := range w.warnings.List() {
		w.Header().Add("Warning", `299 - "`+strings.ReplaceAll(m, `"`, `'`)+`"`)
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.addWarnings()
		w.code, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom hands the copy to the connection, which uses sendfile when src
// is an *os.File.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.addWarnings()
		w.code, w.wroteHeader = http.StatusOK, true
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, src)
	}
	w.bytes += n
	return n, err
}

func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) status() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.code
}

// writerOnly hides every method but Write, so io.Copy cannot loop back
// into ReadFrom.
type writerOnly struct{ io.Writer }

// requestStack is about the stack a request's goroutine reaches (logging
// its line, a regexp, encoding JSON, deepest), with room to spare.
const requestStack = 8 << 10

// growStack grows the goroutine's stack, once, to hold requestStack more
// than it holds now. net/http runs each connection on a new goroutine,
// whose stack starts small and doubles each time a call runs out of it:
// three copies on the way to what a request uses, each walking every
// frame already on the stack, deep in the handler. Grown here, at the
// top, the copy walks a few frames. With keep-alive off (docker's
// pushes) every request is a new connection, and the copies were a
// twentieth of the registry's CPU.
//
//go:noinline
func growStack(i int) byte {
	var pad [requestStack]byte
	return pad[i&(len(pad)-1)]
}
