package registry

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/notifications"
	"github.com/berth-registry/berth/storage"
)

// getBlob sends a blob: a redirect to the backend when the driver offers
// one, else the content through http.ServeContent, which answers Range
// requests with 206 and, given the driver's *os.File, sends with sendfile.
func (a *api) getBlob(w http.ResponseWriter, r *http.Request, req *request) error {
	d, err := parseDigest(req.ref)
	if err != nil {
		return err
	}
	// Opening checks the blob is linked in this repository, which a
	// redirect must not skip: a presigned URL would reveal any blob.
	b, err := req.repo.OpenBlob(r.Context(), d)
	if err != nil {
		return err
	}
	defer b.Close()
	desc := b.Descriptor()
	a.notifyBlob(w, r, req, notifications.ActionPull, desc, "")
	if done, err := a.redirectBlob(w, r, req, desc); done || err != nil {
		return err
	}
	r = withoutEmptySuffixes(r, desc.Size)
	if off, ok := firstByte(r.Header.Get("Range"), desc.Size); ok {
		// Reach the backend before the status line goes out: once a 200
		// is sent, a backend that is down can only cut it short.
		if err := b.Open(off); err != nil {
			return err
		}
	}
	setBlobHeaders(w.Header(), desc)
	var content io.ReadSeeker = b
	if f := b.File(); f != nil {
		content = f
	}
	http.ServeContent(&rangeErrors{ResponseWriter: w, r: r, log: req.log, size: desc.Size}, r, "", b.ModTime(), content)
	return nil
}

// rangeErrors passes a response through, except the plain-text 416 that
// http.ServeContent writes for a Range it cannot satisfy, which becomes the
// registry's JSON error (RANGE_INVALID, with a Content-Range naming the
// blob's size, as RFC 9110 asks). ReadFrom passes through for sendfile.
type rangeErrors struct {
	http.ResponseWriter
	r      *http.Request
	log    *slog.Logger
	size   int64
	failed bool
}

func (w *rangeErrors) WriteHeader(code int) {
	if code != http.StatusRequestedRangeNotSatisfiable || w.failed {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.failed = true
	w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(w.size, 10))
	writeError(w.ResponseWriter, w.r, w.log, &Error{Code: CodeRangeInvalid, Err: fmt.Errorf("range %q", w.r.Header.Get("Range"))})
}

func (w *rangeErrors) Write(p []byte) (int, error) {
	if w.failed {
		return len(p), nil // ServeContent's text, replaced
	}
	return w.ResponseWriter.Write(p)
}

func (w *rangeErrors) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok && !w.failed {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w}, src)
}

func (w *rangeErrors) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// redirectBlob sends a 307 to the backend's URL for the blob when the
// driver can make one and redirects are on.
func (a *api) redirectBlob(w http.ResponseWriter, r *http.Request, req *request, desc storage.Descriptor) (bool, error) {
	if a.opts.RedirectDisabled || !plainRange(r.Header.Get("Range")) {
		return false, nil
	}
	u, err := req.repo.BlobRedirectURL(r, desc.Digest)
	if err != nil || u == "" {
		return false, err
	}
	w.Header().Set("Docker-Content-Digest", desc.Digest.String())
	w.Header().Set("Location", u)
	w.WriteHeader(http.StatusTemporaryRedirect)
	return true, nil
}

// headBlob describes a blob without opening it.
func (a *api) headBlob(w http.ResponseWriter, r *http.Request, req *request) error {
	d, err := parseDigest(req.ref)
	if err != nil {
		return err
	}
	desc, err := req.repo.StatBlob(r.Context(), d)
	if err != nil {
		return err
	}
	h := w.Header()
	setBlobHeaders(h, desc)
	h.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
	w.WriteHeader(http.StatusOK)
	return nil
}

// plainRange tells whether a Range header is absent or one well-formed
// range with a first byte ("bytes=10-99", "bytes=10-"), the forms every
// object store honours alike. Azure Blob Storage documents no suffix
// ranges ("bytes=-500"), its emulator answers them with a broken response
// and a reversed range with the whole blob; such requests, and multi-range
// ones, are served by Berth itself, the same on every backend.
func plainRange(h string) bool {
	if h == "" {
		return true
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return false
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok || first == "" || strings.Contains(last, ",") {
		return false
	}
	from, err := strconv.ParseUint(first, 10, 64)
	if err != nil {
		return false
	}
	if last == "" {
		return true
	}
	to, err := strconv.ParseUint(last, 10, 64)
	return err == nil && to >= from
}

// firstByte is the offset a GET with this Range header starts reading a
// blob of size at: 0 without one, the first byte of a single range, and
// false for what may read from several places or not at all (multiple
// ranges, a range past the end, a malformed header).
func firstByte(h string, size int64) (int64, bool) {
	if h == "" {
		return 0, size > 0
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, false
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, false
	}
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n <= 0 {
			return 0, false
		}
		return max(size-n, 0), size > 0
	}
	off, err := strconv.ParseInt(first, 10, 64)
	if err != nil || off < 0 || off >= size {
		return 0, false
	}
	return off, true
}

// The constant values of blob headers, shared by every response instead
// of allocated by Header.Set for each: header allocations led the
// allocation profile of HEAD requests. Keys are canonical; net/http
// copies the values when it sends them and nothing appends in place.
var (
	octetStream = []string{"application/octet-stream"}
	bytesRanges = []string{"bytes"}
	immutable   = []string{"max-age=31536000"} // the bytes at this URL never change
)

func setBlobHeaders(h http.Header, desc storage.Descriptor) {
	d := desc.Digest.String()
	v := []string{d, `"` + d + `"`} // one allocation for both
	h["Docker-Content-Digest"] = v[:1:1]
	h["Etag"] = v[1:2:2]
	h["Content-Type"] = octetStream
	h["Accept-Ranges"] = bytesRanges
	h["Cache-Control"] = immutable
}

// deleteBlob unlinks a blob from the repository (storage refuses when
// deletes are disabled).
func (a *api) deleteBlob(w http.ResponseWriter, r *http.Request, req *request) error {
	d, err := parseDigest(req.ref)
	if err != nil {
		return err
	}
	if err := req.repo.DeleteBlob(r.Context(), d); err != nil {
		return err
	}
	a.notifyDelete(w, r, req, d, "")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
