package registry

import (
	"net/http"
	"strings"
)

// kind is the shape of a request path, whatever its method.
type kind int

const (
	kindBase      kind = iota + 1 // /v2/
	kindCatalog                   // /v2/_catalog
	kindTags                      // /v2/<name>/tags/list
	kindManifest                  // /v2/<name>/manifests/<reference>
	kindBlob                      // /v2/<name>/blobs/<digest>
	kindUploads                   // /v2/<name>/blobs/uploads/
	kindUpload                    // /v2/<name>/blobs/uploads/<id>
	kindReferrers                 // /v2/<name>/referrers/<digest>
)

// handlerFunc serves one method on one path shape. It writes the success
// response itself and returns any failure for writeError.
type handlerFunc func(a *api, w http.ResponseWriter, r *http.Request, req *request) error

// need is what a route asks of the Authorizer, and whether read-only mode
// refuses it. It is the one place where access is decided: handlers never
// check a permission themselves.
type need int

const (
	// needIdentity asks only "who are you?" (the base /v2/).
	needIdentity need = iota + 1
	// needCatalog asks registry:catalog:*.
	needCatalog
	// needPull asks pull on the repository.
	needPull
	// needPush asks pull and push: writing content, and every step of an
	// upload session (asking where it stands and cancelling it too).
	needPush
	// needPushMount is needPush plus pull on the mount's from repository
	// when the request names one; without from, the mount takes blobs
	// only from what the caller may pull (see mountSource).
	needPushMount
	// needDelete asks delete on the repository.
	needDelete
)

// writes reports whether read-only mode refuses the route: everything
// that changes storage, including the upload-session routes, whose state
// a GET may rewrite and which cannot go on to a commit anyway.
func (n need) writes() bool {
	return n == needPush || n == needPushMount || n == needDelete
}

// route is one method on one path shape.
type route struct {
	method  string
	kind    kind
	pattern string // names the route in logs
	need    need
	handle  handlerFunc
}

// routes is the whole API, one line per method and path shape, with what
// each asks of the Authorizer.
var routes = []route{
	{http.MethodGet, kindBase, "/v2/", needIdentity, (*api).getBase},
	{http.MethodHead, kindBase, "/v2/", needIdentity, (*api).getBase},
	{http.MethodGet, kindCatalog, "/v2/_catalog", needCatalog, (*api).getCatalog},
	{http.MethodGet, kindTags, "/v2/<name>/tags/list", needPull, (*api).getTags},
	{http.MethodGet, kindManifest, "/v2/<name>/manifests/<reference>", needPull, (*api).getManifest},
	{http.MethodHead, kindManifest, "/v2/<name>/manifests/<reference>", needPull, (*api).headManifest},
	{http.MethodPut, kindManifest, "/v2/<name>/manifests/<reference>", needPush, (*api).putManifest},
	{http.MethodDelete, kindManifest, "/v2/<name>/manifests/<reference>", needDelete, (*api).deleteManifest},
	{http.MethodGet, kindBlob, "/v2/<name>/blobs/<digest>", needPull, (*api).getBlob},
	{http.MethodHead, kindBlob, "/v2/<name>/blobs/<digest>", needPull, (*api).headBlob},
	{http.MethodDelete, kindBlob, "/v2/<name>/blobs/<digest>", needDelete, (*api).deleteBlob},
	{http.MethodPost, kindUploads, "/v2/<name>/blobs/uploads/", needPushMount, (*api).startUpload},
	{http.MethodGet, kindUpload, "/v2/<name>/blobs/uploads/<uuid>", needPush, (*api).getUpload},
	{http.MethodPatch, kindUpload, "/v2/<name>/blobs/uploads/<uuid>", needPush, (*api).patchUpload},
	{http.MethodPut, kindUpload, "/v2/<name>/blobs/uploads/<uuid>", needPush, (*api).putUpload},
	{http.MethodDelete, kindUpload, "/v2/<name>/blobs/uploads/<uuid>", needPush, (*api).cancelUpload},
	{http.MethodGet, kindReferrers, "/v2/<name>/referrers/<digest>", needPull, (*api).getReferrers},
}

// findRoute returns the route for method on kind, or nil and the methods
// the path shape does allow.
func findRoute(method string, k kind) (*route, []string) {
	var allow []string
	for i := range routes {
		if routes[i].kind != k {
			continue
		}
		if routes[i].method == method {
			return &routes[i], nil
		}
		allow = append(allow, routes[i].method)
	}
	return nil, allow
}

// target is what a request path names.
type target struct {
	kind kind
	name string // repository name, "" for the base and catalog
	ref  string // digest, tag or upload id
}

// parsePath reads a path below the prefix. Repository names contain
// slashes, so the path is read from its end: the last component is the
// reference and the one before it says what kind of thing is referenced.
func parsePath(p string) (target, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		if p == "/v2" {
			return target{kind: kindBase}, true
		}
		return target{}, false
	}
	switch rest {
	case "":
		return target{kind: kindBase}, true
	case "_catalog":
		return target{kind: kindCatalog}, true
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return target{}, false
	}
	head, last := rest[:i], rest[i+1:]
	j := strings.LastIndexByte(head, '/')
	if j < 0 {
		return target{}, false
	}
	name, what := head[:j], head[j+1:]
	switch what {
	case "uploads":
		if n, ok := strings.CutSuffix(name, "/blobs"); ok {
			if last == "" {
				return target{kind: kindUploads, name: n}, true
			}
			return target{kind: kindUpload, name: n, ref: last}, true
		}
	case "blobs":
		if last == "uploads" {
			// "/blobs/uploads" without the trailing slash.
			return target{kind: kindUploads, name: name}, true
		}
		return target{kind: kindBlob, name: name, ref: last}, last != ""
	case "manifests":
		return target{kind: kindManifest, name: name, ref: last}, last != ""
	case "referrers":
		return target{kind: kindReferrers, name: name, ref: last}, last != ""
	case "tags":
		return target{kind: kindTags, name: name}, last == "list"
	}
	return target{}, false
}
