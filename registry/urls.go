package registry

import (
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
