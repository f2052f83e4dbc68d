package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/notifications"
	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
)

// maxManifestSize is the largest manifest accepted; the spec asks
// registries to take at least 4 MiB.
const maxManifestSize = 4 << 20

// checkReference validates a manifest reference: a digest when it has the
// algorithm separator, else a tag.
func checkReference(ref string) error {
	if isDigestRef(ref) {
		_, err := parseDigest(ref)
		return err
	}
	return checkTag(ref)
}

// getManifest sends a manifest as it was pushed, with the media type it
// was pushed with. An index is sent as it is, whatever the Accept header.
func (a *api) getManifest(w http.ResponseWriter, r *http.Request, req *request) error {
	if err := checkReference(req.ref); err != nil {
		return err
	}
	m, err := req.repo.GetManifest(r.Context(), req.ref)
	if err != nil {
		return err
	}
	h := w.Header()
	setManifestHeaders(h, m.Descriptor)
	if etagMatch(r.Header.Get("If-None-Match"), h.Get("Etag")) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	a.notifyManifest(w, r, req, notifications.ActionPull, m.Descriptor, m.Payload, tagOf(req.ref))
	h.Set("Content-Length", strconv.Itoa(len(m.Payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(m.Payload)
	return nil
}

// headManifest describes a manifest without sending it.
func (a *api) headManifest(w http.ResponseWriter, r *http.Request, req *request) error {
	if err := checkReference(req.ref); err != nil {
		return err
	}
	desc, err := req.repo.StatManifest(r.Context(), req.ref)
	if err != nil {
		return err
	}
	h := w.Header()
	setManifestHeaders(h, desc)
	h.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
	w.WriteHeader(http.StatusOK)
	return nil
}

func setManifestHeaders(h http.Header, desc storage.Descriptor) {
	if desc.MediaType != "" {
		h.Set("Content-Type", desc.MediaType)
	}
	h.Set("Docker-Content-Digest", desc.Digest.String())
	h.Set("Etag", `"`+desc.Digest.String()+`"`)
}

// etagMatch reports whether an If-None-Match header names etag.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for v := range strings.SplitSeq(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == "*" || v == etag {
			return true
		}
	}
	return false
}

// putManifest stores a manifest under a tag or a digest, and under the
// tags of any ?tag= parameters.
func (a *api) putManifest(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	var want digest.Digest
	if isDigestRef(req.ref) {
		d, err := parseDigest(req.ref)
		if err != nil {
			return err
		}
		want = d
	} else if err := checkTag(req.ref); err != nil {
		return err
	}
	var tags []string
	for _, t := range r.URL.Query()["tag"] {
		if err := checkTag(t); err != nil {
			return err
		}
		if t != req.ref && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		return &Error{Code: CodeManifestInvalid, Message: "failed to read manifest", Err: err}
	}
	if len(payload) > maxManifestSize {
		return &Error{Code: CodeManifestInvalid, Message: "manifest too large", Status: http.StatusRequestEntityTooLarge,
			Detail: map[string]int{"limit": maxManifestSize}}
	}
	if want != "" && want.Algorithm().FromBytes(payload) != want {
		return &Error{Code: CodeDigestInvalid, Message: "manifest digest did not match content", Detail: map[string]string{"digest": want.String()}}
	}
	mediaType, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	mediaType = strings.TrimSpace(mediaType)
	m, err := req.repo.PutManifest(ctx, req.ref, mediaType, payload)
	if err != nil {
		return err
	}
	tagged, err := a.tagManifest(ctx, req, m, tags)
	if err != nil {
		return err
	}
	a.notifyManifest(w, r, req, notifications.ActionPush, m.Descriptor, payload, append(tagOf(req.ref), tagged...))
	h := w.Header()
	h.Set("Location", a.location(r, manifestPath(req.name, m.Digest.String()), nil))
	h.Set("Docker-Content-Digest", m.Digest.String())
	if m.Subject != "" {
		h.Set("OCI-Subject", m.Subject.String())
	}
	if len(tagged) > 0 {
		h.Set("OCI-Tag", strings.Join(tagged, ", "))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// tagManifest points the ?tag= tags at m and returns them.
func (a *api) tagManifest(ctx context.Context, req *request, m storage.Manifest, tags []string) ([]string, error) {
	for _, t := range tags {
		if err := req.repo.Tag(ctx, t, m.Digest); err != nil {
			return nil, err
		}
	}
	return tags, nil
}

// tagsOn lists the repository's tags that point at d.
func tagsOn(ctx context.Context, repo storage.Repository, d digest.Digest) ([]string, error) {
	all, _, err := repo.Tags(ctx, 0, "")
	if err != nil {
		if errors.Is(err, storage.ErrNameUnknown) {
			return nil, nil
		}
		return nil, err
	}
	var on []string
	for _, t := range all {
		desc, err := repo.StatManifest(ctx, t)
		if err != nil {
			continue // deleted meanwhile
		}
		if desc.Digest == d {
			on = append(on, t)
		}
	}
	return on, nil
}

// deleteManifest deletes a manifest by digest, or a tag alone by tag.
func (a *api) deleteManifest(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	if isDigestRef(req.ref) {
		d, err := parseDigest(req.ref)
		if err != nil {
			return err
		}
		// Deleting a manifest deletes the tags on it; receivers hear of
		// each, as from Distribution.
		var tags []string
		if a.opts.Events != nil {
			if tags, err = tagsOn(ctx, req.repo, d); err != nil {
				return err
			}
		}
		if err := req.repo.DeleteManifest(ctx, d); err != nil {
			return err
		}
		a.notifyDelete(w, r, req, d, "")
		for _, t := range tags {
			a.notifyDelete(w, r, req, "", t)
		}
	} else {
		if err := checkTag(req.ref); err != nil {
			return err
		}
		if err := req.repo.DeleteTag(ctx, req.ref); err != nil {
			return err
		}
		a.notifyDelete(w, r, req, "", req.ref)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
