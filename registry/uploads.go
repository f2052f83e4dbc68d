package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/notifications"
	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
)

// startUpload is POST /v2/<name>/blobs/uploads/: a cross-repository mount
// (?mount=&from=), a whole blob in one request (?digest=), or the start of
// an upload session.
func (a *api) startUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	q := r.URL.Query()
	if alg := q.Get("digest-algorithm"); alg != "" && alg != string(digest.SHA256) && alg != string(digest.SHA512) {
		return &Error{Code: CodeDigestInvalid, Message: "unsupported digest algorithm", Detail: map[string]string{"digest-algorithm": truncate(alg, 64)}}
	}
	if mount := q.Get("mount"); mount != "" {
		d, err := parseDigest(mount)
		if err != nil {
			return err
		}
		from := q.Get("from")
		if from != "" {
			if err := checkName(from); err != nil {
				return err
			}
		}
		desc, err := req.repo.MountBlob(ctx, req.mount, d)
		switch {
		case err == nil:
			a.notifyBlob(w, r, req, notifications.ActionMount, desc, from)
			a.blobCreated(w, r, req, desc)
			return nil
		case errors.Is(err, storage.ErrBlobUnknown), errors.Is(err, storage.ErrNameUnknown), errors.Is(err, storage.ErrCollecting):
			// Not mountable: the client uploads it instead, as the spec
			// asks, in the session started below (a blob being
			// garbage-collected may be gone by the time it is uploaded).
			req.log.DebugContext(ctx, "blob not mountable", "digest", d, "from", from)
		default:
			return err
		}
	} else if ds := q.Get("digest"); ds != "" {
		d, err := parseDigest(ds)
		if err != nil {
			return err
		}
		return a.monolithicUpload(w, r, req, d)
	}
	up, err := req.repo.NewUpload(ctx)
	if err != nil {
		return err
	}
	if alg := q.Get("digest-algorithm"); alg != "" {
		if err := setAlgorithm(up, digest.Algorithm(alg)); err != nil {
			a.cancel(r, req, up)
			return err
		}
	}
	if err := up.Close(ctx); err != nil {
		return err
	}
	if a.chunkMin > 0 {
		w.Header().Set("OCI-Chunk-Min-Length", strconv.FormatInt(a.chunkMin, 10))
	}
	a.uploadAccepted(w, r, req, up)
	return nil
}

// algorithmSetter is implemented by uploads that can hash with another
// algorithm than sha256 from the first byte, so a sha512 blob is verified
// without being read back.
type algorithmSetter interface {
	SetAlgorithm(alg digest.Algorithm) error
}

// setAlgorithm picks the upload's digest algorithm when the upload is still
// empty and can; otherwise storage verifies the digest its own way.
func setAlgorithm(up storage.Upload, alg digest.Algorithm) error {
	if s, ok := up.(algorithmSetter); ok && up.Size() == 0 {
		return s.SetAlgorithm(alg)
	}
	return nil
}

// monolithicUpload stores the request body as the blob d in one request.
func (a *api) monolithicUpload(w http.ResponseWriter, r *http.Request, req *request, d digest.Digest) error {
	ctx := r.Context()
	up, err := req.repo.NewUpload(ctx)
	if err != nil {
		return err
	}
	if err := setAlgorithm(up, d.Algorithm()); err != nil {
		a.cancel(r, req, up)
		return err
	}
	if err := copyBody(up, r.Body, r.ContentLength); err != nil {
		a.cancel(r, req, up)
		return err
	}
	return a.finishUpload(w, r, req, up, d)
}

// getUpload reports how much of an upload the registry has. It writes
// nothing, so it works in read-only mode and beside a request that is
// writing the upload.
func (a *api) getUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	state, _, err := a.checkUpload(r, req)
	if err != nil {
		return err
	}
	size, err := req.repo.StatUpload(r.Context(), req.ref)
	if err != nil {
		return err
	}
	a.setUploadHeaders(w, r, req, req.ref, size, state.StartedAt)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// patchUpload appends a chunk: with a Content-Range that must start where
// the upload ends (else 416), or streamed without one.
func (a *api) patchUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	up, err := a.resume(w, r, req)
	if err != nil {
		return err
	}
	// Closing persists the upload's state even when the client hung up:
	// whatever part of the chunk arrived is kept, so the client can ask
	// where the upload stands and go on from there.
	ctx := context.WithoutCancel(r.Context())
	body, err := a.chunk(w, r, req, up)
	if err != nil {
		_ = up.Close(ctx)
		return err
	}
	copyErr := copyBody(up, body, r.ContentLength)
	if err := up.Close(ctx); err != nil && copyErr == nil {
		return err
	}
	if copyErr != nil {
		return copyErr
	}
	a.uploadAccepted(w, r, req, up)
	return nil
}

// putUpload completes an upload, with an optional last chunk in the body.
func (a *api) putUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	d, err := parseDigest(r.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	up, err := a.resume(w, r, req)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cleanup := context.WithoutCancel(ctx)
	body, err := a.chunk(w, r, req, up)
	if err != nil {
		_ = up.Close(cleanup)
		return err
	}
	if d.Algorithm() != digest.SHA256 {
		if err := setAlgorithm(up, d.Algorithm()); err != nil {
			_ = up.Close(cleanup)
			return err
		}
	}
	if err := copyBody(up, body, r.ContentLength); err != nil {
		_ = up.Close(cleanup)
		return err
	}
	return a.finishUpload(w, r, req, up, d)
}

// finishUpload commits up as d and answers 201. As in Distribution, a
// failed commit ends the upload, so a mismatched digest leaves nothing
// behind.
func (a *api) finishUpload(w http.ResponseWriter, r *http.Request, req *request, up storage.Upload, d digest.Digest) error {
	desc, err := up.Commit(r.Context(), d)
	if err != nil {
		a.cancel(r, req, up)
		return err
	}
	noteUpload(w, up.StartedAt())
	a.notifyBlob(w, r, req, notifications.ActionPush, desc, "")
	a.blobCreated(w, r, req, desc)
	return nil
}

// cancelUpload discards an upload and what it holds.
func (a *api) cancelUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	up, err := a.resume(w, r, req)
	if err != nil {
		return err
	}
	if err := up.Cancel(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// resume opens the request's upload for it alone. An upload another
// request is writing or committing is refused with 416 and the Range the
// session had when its last request ended, so the client can resume from
// there once that request is over, never interleaving with it.
//
// A URL signed with an offset (Distribution's form) that is not the
// upload's size is refused with 416 RANGE_INVALID, as CNCF Distribution
// refuses it: the URL is stale (a retried request, a client that kept an
// old Location), and the answer's Location and Range say where the upload
// stands.
func (a *api) resume(w http.ResponseWriter, r *http.Request, req *request) (storage.Upload, error) {
	state, signed, err := a.checkUpload(r, req)
	if err != nil {
		return nil, err
	}
	up, err := req.repo.ResumeUpload(r.Context(), req.ref)
	var busy *storage.BusyError
	if errors.As(err, &busy) {
		a.setUploadHeaders(w, r, req, req.ref, busy.Size, state.StartedAt)
		return nil, &Error{Code: CodeBlobUploadInvalid, Status: http.StatusRequestedRangeNotSatisfiable,
			Message: "upload is in use by another request", Detail: map[string]string{"range": uploadRange(busy.Size)}, Err: err}
	}
	if err != nil {
		return nil, err
	}
	if signed && state.Offset != up.Size() {
		a.setUploadHeaders(w, r, req, up.ID(), up.Size(), up.StartedAt())
		if err := up.Close(context.WithoutCancel(r.Context())); err != nil {
			return nil, err
		}
		return nil, &Error{Code: CodeRangeInvalid, Message: "upload URL is for another offset than the upload has",
			Detail: map[string]string{"offset": strconv.FormatInt(state.Offset, 10), "range": uploadRange(up.Size())}}
	}
	return up, nil
}

// checkUpload refuses a malformed upload id, or one whose signed state
// does not match it, and returns the state (see checkUploadState).
func (a *api) checkUpload(r *http.Request, req *request) (uploadState, bool, error) {
	if !uploadIDRE.MatchString(req.ref) {
		return uploadState{}, false, &Error{Code: CodeBlobUploadUnknown, Detail: map[string]string{"uuid": truncate(req.ref, 128)}}
	}
	return a.checkUploadState(r, req.name, req.ref)
}

// setUploadHeaders sets what every answer about an upload session carries.
func (a *api) setUploadHeaders(w http.ResponseWriter, r *http.Request, req *request, id string, size int64, started time.Time) {
	h := w.Header()
	h.Set("Location", a.uploadLocation(r, req.name, id, size, started))
	h.Set("Range", uploadRange(size))
	h.Set("Docker-Upload-UUID", id)
}

// chunk checks the request's Content-Range, if any, against the upload and
// returns the body to append. A chunk that does not start where the upload
// ends is refused with 416 and the upload's Location and Range, so the
// client can resume.
func (a *api) chunk(w http.ResponseWriter, r *http.Request, req *request, up storage.Upload) (io.Reader, error) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return r.Body, nil
	}
	start, end, ok := parseContentRange(cr)
	if ok && start == up.Size() && (r.ContentLength < 0 || r.ContentLength == end-start+1) {
		return io.LimitReader(r.Body, end-start+1), nil
	}
	a.setUploadHeaders(w, r, req, up.ID(), up.Size(), up.StartedAt())
	return nil, &Error{Code: CodeRangeInvalid, Detail: map[string]string{"content-range": truncate(cr, 64), "range": uploadRange(up.Size())}}
}

// parseContentRange reads "<start>-<end>", inclusive, as the spec writes
// it, also accepting the "bytes " unit and a "/<length>" suffix some
// clients add.
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "bytes")
	s = strings.TrimLeft(s, " =")
	s, _, _ = strings.Cut(s, "/")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	// A length that overflows (0-9223372036854775807, found by
	// FuzzParseContentRange) would limit the body to a negative size.
	if err1 != nil || err2 != nil || start < 0 || end < start || end-start+1 <= 0 {
		return 0, 0, false
	}
	return start, end, true
}

// uploadRange is the Range header of an upload holding size bytes. An
// empty upload reports "0-0", as CNCF Distribution does and clients expect.
func uploadRange(size int64) string {
	if size <= 0 {
		return "0-0"
	}
	return "0-" + strconv.FormatInt(size-1, 10)
}

// uploadAccepted answers 202 for an upload session. It sends no
// OCI-Chunk-Min-Length: chunks of any size are accepted.
func (a *api) uploadAccepted(w http.ResponseWriter, r *http.Request, req *request, up storage.Upload) {
	a.setUploadHeaders(w, r, req, up.ID(), up.Size(), up.StartedAt())
	h := w.Header()
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

func (a *api) blobCreated(w http.ResponseWriter, r *http.Request, req *request, desc storage.Descriptor) {
	h := w.Header()
	h.Set("Location", a.location(r, blobPath(req.name, desc.Digest.String()), nil))
	h.Set("Docker-Content-Digest", desc.Digest.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// cancel ends an upload that failed; the failure that led here is what
// the client is told, so a failed cancel is only logged.
func (a *api) cancel(r *http.Request, req *request, up storage.Upload) {
	if err := up.Cancel(context.WithoutCancel(r.Context())); err != nil && !errors.Is(err, storage.ErrUploadUnknown) {
		req.log.WarnContext(r.Context(), "upload cancel failed", "repo", req.name, "upload", up.ID(), "error", err)
	}
}

// copyBody streams a request body of length bytes (-1 when unknown) into
// an upload. A failure to read the
// body is the client's (a dropped connection, a body over its limit), not
// a server fault.
func copyBody(up storage.Upload, body io.Reader, length int64) error {
	if e, ok := up.(storage.Expecter); ok && length > 0 {
		// An object store cuts a body it knows the length of into parts
		// it sends together.
		e.Expect(length)
	}
	br := &bodyReader{r: body}
	if _, err := up.ReadFrom(br); err != nil {
		// ReadFrom writes what it read before it reports the read's
		// failure: a storage error then (a full disk, a lapsed lease)
		// is the one returned, and is not the client's.
		if br.err != nil && errors.Is(err, br.err) {
			return &Error{Code: CodeBlobUploadInvalid, Message: "failed to read request body", Err: br.err}
		}
		return err
	}
	return nil
}

// bodyReader remembers a read error so copyBody can tell it from a
// storage error.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
