// Package registry is Berth's HTTP server: the OCI distribution-spec v1.1
// API and CNCF Distribution's /v2/_catalog over a storage.Registry. It
// knows HTTP, routes and API error codes; it knows nothing of storage
// paths, which stay behind the storage package.
package registry

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

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
	// TagsMax caps the n a client asks of a tag list (tags.maxtags): a
	// larger n is served as TagsMax with a Link to the rest, as
	// Distribution does. Zero means no cap.
	TagsMax int
	// BodyIdleTimeout ends a request whose body sends nothing for this
	// long (berth.http.bodyidletimeout). What arrived before is kept: a
	// stalled PATCH leaves its session resumable at the received offset.
	// Zero means no limit.
	BodyIdleTimeout time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For, Forwarded and
	// X-Real-Ip headers name the client (berth.http.trustedproxies). A
	// request from anyone else is taken to come from its peer address,
	// whatever its headers say. Empty trusts no one.
	TrustedProxies []netip.Prefix
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

// Store is the content the API serves: a *storage.Registry, or a
// pull-through mirror over one (storage/mirror), which answers from an
// upstream what it has no copy of.
type Store interface {
	Repository(name string) storage.Repository
	Catalog(ctx context.Context, n int, last string) ([]string, error)
	// PartSize is the size of the parts the backend stores a write in, the
	// smallest chunk an upload should send (0: no minimum).
	PartSize() int64
}

// Namespacer is a Store that serves other registries' content under a
// repository prefix. Given the distribution spec's ns query parameter
// (the registry a client meant, "docker.io"), Namespace returns the
// prefix that registry's repositories have here, and whether there is
// one; the answer then carries OCI-Namespace.
type Namespacer interface {
	Namespace(ns string) (prefix string, ok bool)
}

// Warner is a Store whose answers may carry warnings (storage.Warn): a
// mirror serving a copy it could not revalidate. Only for such a Store
// does a request carry a collector, which costs allocations per request.
type Warner interface {
	Warns() bool
}

// api serves the HTTP API.
type api struct {
	reg Store
	// warns is set when reg is a Warner that warns.
	warns bool
	opts  Options
	log   *slog.Logger
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
	// mount is where a mount (POST .../blobs/uploads/?mount=) may take
	// its blob from, as dispatch decided; nowhere on other routes.
	mount storage.MountSource
}

// New returns the handler of the whole API over reg.
func New(reg Store, opts Options, log *slog.Logger) http.Handler {
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
	if w, ok := reg.(Warner); ok {
		a.warns = w.Warns()
	}
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
	a.namespace(w, r, &t)
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
	// With no Authorizer the registry is open: anyone may pull anything.
	pullable := Pullable{All: true}
	if a.opts.Authorize != nil {
		r2, err := a.opts.Authorize(w, r, accessFor(r, t, rt.need))
		if err != nil {
			return err
		}
		pullable = Pullable{}
		if r2 != nil {
			r = r2
			w.user = UserFromContext(r.Context())
			pullable = pullableFrom(r.Context())
		}
	}
	if a.opts.ReadOnly && rt.need.writes() {
		return apiErr(CodeUnsupported, "registry is in read-only mode")
	}
	req := &request{target: t, log: log}
	if t.name != "" {
		req.repo = a.reg.Repository(t.name)
	}
	if rt.need == needPushMount {
		req.mount = mountSource(r, pullable)
	}
	return rt.handle(a, w, r, req)
}

// namespace applies the ns query parameter: a repository of the
// registry ns is served under the prefix the Store keeps it at, and the
// answer names the namespace served. An ns the Store does not serve is
// ignored, as the spec allows.
func (a *api) namespace(w *responseWriter, r *http.Request, t *target) {
	nsr, ok := a.reg.(Namespacer)
	if !ok || t.name == "" || !strings.Contains(r.URL.RawQuery, "ns=") {
		return // without parsing the query on the hot path
	}
	ns := r.URL.Query().Get("ns")
	if ns == "" {
		return
	}
	prefix, ok := nsr.Namespace(ns)
	if !ok {
		return
	}
	if prefix != "" && !strings.HasPrefix(t.name+"/", prefix+"/") {
		t.name = prefix + "/" + t.name
	}
	w.Header().Set("OCI-Namespace", ns)
}

// errNotFound answers a path that is no part of the API.
var errNotFound = &Error{Code: CodeUnsupported, Message: "unknown API endpoint", Status: http.StatusNotFound}

// accessFor lists what a request does, for the Authorizer, from its
// route's need: pull for reads, pull and push for writes and upload
// sessions, delete for deletes, pull on the source of a cross-repository
// mount that names one, and the catalog for /v2/_catalog.
func accessFor(r *http.Request, t target, n need) []Access {
	repo := func(actions ...string) []Access {
		return []Access{{Type: "repository", Name: t.name, Actions: actions}}
	}
	switch n {
	case needCatalog:
		return []Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	case needPull:
		return repo("pull")
	case needPush:
		return repo("pull", "push")
	case needDelete:
		return repo("delete")
	case needPushMount:
		access := repo("pull", "push")
		q := r.URL.Query()
		if from := q.Get("from"); q.Get("mount") != "" && from != "" && from != t.name && validName(from) {
			access = append(access, Access{Type: "repository", Name: from, Actions: []string{"pull"}})
		}
		return access
	}
	return nil // needIdentity
}

// maxMountSources bounds the repositories a mount without from looks in,
// so a token naming hundreds of repositories cannot make one request cost
// hundreds of backend reads; past it the client uploads, as for a blob
// not found.
const maxMountSources = 8

// mountSource is where a mount may take its blob from. A request naming
// from takes it from there only (accessFor had the Authorizer check pull
// on it). Without from, only from what the caller could already pull: any
// repository when it may pull them all, else the repositories its
// credentials name, so the 201 of a mount never tells of a blob the caller
// could not have read, and a blob it could not read is uploaded (202)
// exactly as one that exists nowhere.
func mountSource(r *http.Request, p Pullable) storage.MountSource {
	q := r.URL.Query()
	if q.Get("mount") == "" {
		return storage.MountSource{}
	}
	if from := q.Get("from"); from != "" {
		return storage.MountSource{Repositories: []string{from}}
	}
	if p.All {
		return storage.MountSource{Any: true}
	}
	repos := p.Repositories
	if len(repos) > maxMountSources {
		repos = repos[:maxMountSources]
	}
	return storage.MountSource{Repositories: repos}
}
