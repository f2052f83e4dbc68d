// Package registry is Berth's HTTP server: the OCI distribution-spec v1.1
// API and CNCF Distribution's /v2/_catalog over a storage.Registry. It
// knows HTTP, routes and API error codes; it knows nothing of storage
// paths, which stay behind the storage package.
package registry

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/storage"
)

// Options configure the HTTP API. The zero value serves every API at /v2/
// with absolute URLs built from the request.
type Options struct {
	// Prefix is http.prefix: the path the API is mounted under ("/reg"
	// serves /reg/v2/...).
	Prefix string
	// Host is http.host: the externally reachable base URL
	// ("https://registry.example.com") used in Location headers instead of
	// the request's Host.
	Host string
	// RelativeURLs is http.relativeurls: send Location headers as paths.
	RelativeURLs bool
	// ReadOnly refuses every write with UNSUPPORTED
	// (storage.maintenance.readonly).
	ReadOnly bool
	// RedirectDisabled serves blobs from Berth even when the driver can
	// redirect the client to the backend (storage.redirect.disable).
	RedirectDisabled bool
	// Secret is http.secret. When set, upload URLs carry a _state
	// parameter signed with it, and an upload request without a valid one
	// is refused: a session URL works only on instances sharing the secret.
	Secret string
	// Headers are http.headers, added to every response.
	Headers http.Header
	// CatalogMaxEntries caps one page of /v2/_catalog (catalog.maxentries);
	// zero means 1000.
	CatalogMaxEntries int
	// Authorize, when not nil, is asked before every request is served.
	Authorize Authorizer
	// Observe, when not nil, hears of every request (metrics, tracing).
	Observe Observer
	// Health, when not nil, is asked by every request to /v2/: while it
	// returns an error, /v2/ answers 503 UNAVAILABLE, as Distribution does
	// while a check of the health section fails.
	Health func() error
	// AccessLogDisabled drops the one info line per request
	// (log.accesslog.disabled); failures are still logged.
	AccessLogDisabled bool
	// Events, when not nil, is told of every push, pull (GET, not HEAD),
	// mount and delete before the response is sent (webhook
	// notifications).
	Events EventSink
	// EventReferences fills target.references in manifest events
	// (notifications.events.includereferences).
	EventReferences bool
}

// Access is one resource a request touches and what it does to it, in
// the terms of the Docker token scope: type "repository" with actions
// "pull", "push" and "delete", or type "registry" named "catalog" with
// action "*".
type Access struct {
	Type    string
	Name    string
	Actions []string
}

// Authorizer decides whether r may do everything in access (empty for the
// /v2/ base, which only asks "who are you?"). It may set response headers
// on w (a WWW-Authenticate challenge) before refusing. A refusal that is
// an *Error (UNAUTHORIZED, DENIED, TOOMANYREQUESTS) is sent as it is; any
// other error is a server fault. The returned request, when not nil,
// replaces r for the handler, so the caller can put the identity in its
// context.
type Authorizer func(w http.ResponseWriter, r *http.Request, access []Access) (*http.Request, error)

// api serves the HTTP API.
type api struct {
	reg  *storage.Registry
	opts Options
	log  *slog.Logger
	// chunkMin is the OCI-Chunk-Min-Length a new upload advertises: the
	// driver's part size, or 0 (no header) when any chunk size is as good.
	chunkMin int64
}

// request is what a handler gets besides the http.Request: the parsed
// path, the repository it names and the request's logger.
type request struct {
	target
	repo storage.Repository // nil for the base and catalog
	log  *slog.Logger
}

// New returns the handler of the whole API over reg.
func New(reg *storage.Registry, opts Options, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/")
	if opts.Prefix != "" && !strings.HasPrefix(opts.Prefix, "/") {
		opts.Prefix = "/" + opts.Prefix
	}
	opts.Host = strings.TrimSuffix(opts.Host, "/")
	if opts.CatalogMaxEntries <= 0 {
		opts.CatalogMaxEntries = 1000
	}
	a := &api{reg: reg, opts: opts, log: log}
	a.chunkMin = reg.PartSize()
	return a
}

// dispatch routes one request and returns what went wrong, if anything.
// The logging middleware (serve) wraps it.
func (a *api) dispatch(w *responseWriter, r *http.Request, log *slog.Logger) error {
	p, ok := strings.CutPrefix(r.URL.Path, a.opts.Prefix)
	if !ok {
		return errNotFound
	}
	t, ok := parsePath(p)
	if !ok {
		return errNotFound
	}
	rt, allow := findRoute(r.Method, t.kind)
	if rt == nil {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return apiErr(CodeUnsupported, "method not allowed")
	}
	w.route, w.repo, w.kind = rt.pattern, t.name, t.kind
	if t.kind != kindBase && t.kind != kindCatalog {
		if err := checkName(t.name); err != nil {
			return err
		}
	}
	if t.kind == kindBase && a.opts.Health != nil {
		// Before auth, so a load balancer's anonymous probe sees it.
		if err := a.opts.Health(); err != nil {
			return unhealthy(err)
		}
	}
	if a.opts.Authorize != nil {
		r2, err := a.opts.Authorize(w, r, accessFor(r, t))
		if err != nil {
			return err
		}
		if r2 != nil {
			r = r2
			w.user = UserFromContext(r.Context())
		}
	}
	if a.opts.ReadOnly && isWrite(r.Method) {
		return apiErr(CodeUnsupported, "registry is in read-only mode")
	}
	req := &request{target: t, log: log}
	if t.name != "" {
		req.repo = a.reg.Repository(t.name)
	}
	return rt.handle(a, w, r, req)
}

// errNotFound answers a path that is no part of the API.
var errNotFound = &Error{Code: CodeUnsupported, Message: "unknown API endpoint", Status: http.StatusNotFound}

// accessFor lists what a request does, for the Authorizer: pull for reads,
// pull and push for writes, delete for deletes, pull on the source of a
// cross-repository mount, and the catalog for /v2/_catalog.
func accessFor(r *http.Request, t target) []Access {
	switch t.kind {
	case kindBase:
		return nil
	case kindCatalog:
		return []Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	}
	var actions []string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		actions = []string{"pull"}
	case http.MethodDelete:
		actions = []string{"delete"}
	default:
		actions = []string{"pull", "push"}
	}
	access := []Access{{Type: "repository", Name: t.name, Actions: actions}}
	if t.kind == kindUploads && r.Method == http.MethodPost {
		q := r.URL.Query()
		if from := q.Get("from"); q.Get("mount") != "" && from != "" && from != t.name && validName(from) {
			access = append(access, Access{Type: "repository", Name: from, Actions: []string{"pull"}})
		}
	}
	return access
}
