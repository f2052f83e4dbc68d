package registry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// location builds the URL of an API path ("/v2/...") for a Location
// header, as CNCF Distribution does: a bare path with RelativeURLs, else
// an absolute URL on http.host when configured, else on the host and
// scheme the client used (trusting X-Forwarded-Proto and -Host from a
// proxy in front).
func (a *api) location(r *http.Request, path string, query url.Values) string {
	u := a.opts.Prefix + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	if a.opts.RelativeURLs {
		return u
	}
	if a.opts.Host != "" {
		return a.opts.Host + u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
		scheme = p
	}
	host := r.Host
	if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" {
		host = h
	}
	return scheme + "://" + host + u
}

// link is the RFC 5988 Link header to the next page of a listing; it is
// always a path, as Distribution sends it.
func (a *api) link(path string, n int, last string) string {
	q := url.Values{}
	q.Set("n", strconv.Itoa(n))
	q.Set("last", last)
	return "<" + a.opts.Prefix + path + "?" + q.Encode() + `>; rel="next"`
}

func blobPath(name, d string) string     { return "/v2/" + name + "/blobs/" + d }
func manifestPath(name, d string) string { return "/v2/" + name + "/manifests/" + d }
func uploadPath(name, id string) string  { return "/v2/" + name + "/blobs/uploads/" + id }

// firstValue is the first of a comma-separated header, as set by a chain
// of proxies.
func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// uploadLocation is the URL of an upload session, signed when a secret is
// configured.
func (a *api) uploadLocation(r *http.Request, name, id string) string {
	var q url.Values
	if a.opts.Secret != "" {
		q = url.Values{"_state": {a.uploadState(name, id)}}
	}
	return a.location(r, uploadPath(name, id), q)
}

// uploadState binds an upload id to its repository with http.secret.
func (a *api) uploadState(name, id string) string {
	m := hmac.New(sha256.New, []byte(a.opts.Secret))
	m.Write([]byte(name + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkUploadState refuses an upload request whose _state was not signed
// for this repository and id with http.secret.
func (a *api) checkUploadState(r *http.Request, name, id string) error {
	if a.opts.Secret == "" {
		return nil
	}
	got := r.URL.Query().Get("_state")
	if !hmac.Equal([]byte(got), []byte(a.uploadState(name, id))) {
		return &Error{Code: CodeBlobUploadInvalid, Message: "upload URL state is missing or not signed with this registry's http.secret"}
	}
	return nil
}
