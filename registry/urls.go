package registry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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

// uploadLocation is the URL of an upload session holding size bytes,
// started at started. With a secret configured its _state is signed in
// CNCF Distribution's form (see uploadState), so that a Distribution
// instance behind the same load balancer, with the same http.secret,
// continues the upload.
func (a *api) uploadLocation(r *http.Request, name, id string, size int64, started time.Time) string {
	var q url.Values
	if a.opts.Secret != "" {
		q = url.Values{"_state": {a.packUploadState(uploadState{Name: name, UUID: id, Offset: size, StartedAt: started})}}
	}
	return a.location(r, uploadPath(name, id), q)
}

// uploadState is what an upload URL's _state carries in CNCF
// Distribution's form: URL-safe base64 (padded) of HMAC-SHA256 with
// http.secret over the JSON that follows it, then that JSON. The field
// names are Distribution's. Offset is the size of the upload when the URL
// was handed out: a request that resumes the upload at another size is
// refused with 416, as Distribution refuses it, so a client holding a
// stale URL asks where the upload stands instead of writing after bytes
// it does not know of.
type uploadState struct {
	Name      string
	UUID      string
	Offset    int64
	StartedAt time.Time
}

func (a *api) packUploadState(s uploadState) string {
	body, err := json.Marshal(s)
	if err != nil {
		panic(err) // not reached: strings, an integer and a time
	}
	m := hmac.New(sha256.New, []byte(a.opts.Secret))
	m.Write(body)
	return base64.URLEncoding.EncodeToString(append(m.Sum(nil), body...))
}

var errUploadStateSignature = errors.New("upload state not signed with this http.secret")

func (a *api) unpackUploadState(token string) (uploadState, error) {
	var s uploadState
	raw, err := base64.URLEncoding.DecodeString(token)
	if err != nil {
		return s, err
	}
	m := hmac.New(sha256.New, []byte(a.opts.Secret))
	if len(raw) < m.Size() {
		return s, errUploadStateSignature
	}
	m.Write(raw[m.Size():])
	if !hmac.Equal(m.Sum(nil), raw[:m.Size()]) {
		return s, errUploadStateSignature
	}
	if err := json.Unmarshal(raw[m.Size():], &s); err != nil {
		return s, err
	}
	return s, nil
}

// legacyUploadState binds an upload id to its repository with http.secret,
// as Berth signed upload URLs before it took up Distribution's form.
func (a *api) legacyUploadState(name, id string) string {
	m := hmac.New(sha256.New, []byte(a.opts.Secret))
	m.Write([]byte(name + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkUploadState refuses an upload request whose _state was not signed
// for this repository and id with http.secret: in Distribution's form
// (from Berth or from a Distribution instance sharing the secret), which
// it returns with signed set, or in Berth's earlier one, which carries no
// offset.
func (a *api) checkUploadState(r *http.Request, name, id string) (s uploadState, signed bool, err error) {
	if a.opts.Secret == "" {
		return s, false, nil
	}
	got := r.URL.Query().Get("_state")
	if s, err := a.unpackUploadState(got); err == nil && s.Name == name && s.UUID == id {
		return s, true, nil
	}
	if hmac.Equal([]byte(got), []byte(a.legacyUploadState(name, id))) {
		return s, false, nil
	}
	return s, false, &Error{Code: CodeBlobUploadInvalid, Message: "upload URL state is missing or not signed with this registry's http.secret"}
}
