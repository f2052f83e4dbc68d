package registry

import (
	"io"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/notifications"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
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
	setBlobHeaders(w.Header(), desc)
	var content io.ReadSeeker = b
	if f := b.File(); f != nil {
		content = f
	}
	http.ServeContent(w, r, "", b.ModTime(), content)
	return nil
}

// redirectBlob sends a 307 to the backend's URL for the blob when the
// driver can make one and redirects are on.
func (a *api) redirectBlob(w http.ResponseWriter, r *http.Request, req *request, desc storage.Descriptor) (bool, error) {
	if a.opts.RedirectDisabled {
		return false, nil
	}
	rd, ok := a.reg.Driver().(driver.Redirector)
	if !ok {
		return false, nil
	}
	p, err := req.repo.BlobPath(desc.Digest)
	if err != nil {
		return false, err
	}
	u, err := rd.RedirectURL(r, p)
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
