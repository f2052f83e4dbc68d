// Package mirror is Berth's pull-through cache: a content model that
// answers what it has no copy of from an upstream registry, keeps what it
// fetched in the same storage, through the same driver, and forgets it
// after a time to live. It sits between the HTTP API and storage: the API
// asks it for repositories as it would ask a *storage.Registry.
//
// One upstream may serve every repository (Distribution's proxy section)
// or each upstream a repository prefix ("docker.io/…"); a repository no
// upstream serves is an ordinary one. Concurrent requests for one missing
// blob share one upstream fetch, streamed to each of them as it arrives
// and published only once its digest is verified.
//
// It knows no HTTP of its own clients; it speaks HTTP only to upstreams.
package mirror

import (
	"context"
	"github.com/opencontainers/go-digest"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/storage"
)

// DefaultTTL is how long fetched content is kept when a config says
// nothing (Distribution's proxy.ttl default).
const DefaultTTL = 168 * time.Hour

// DefaultFreshness is how long a tag fetched or revalidated is served
// without asking the upstream again.
const DefaultFreshness = 30 * time.Second

// Upstream is one registry to mirror.
type Upstream struct {
	// Prefix is the repository prefix the upstream's repositories are
	// served under ("docker.io" serves docker.io/library/alpine as the
	// upstream's library/alpine). Empty: every repository.
	Prefix string
	// RemoteURL is the upstream's base URL (https://registry-1.docker.io).
	RemoteURL string
	// Credentials, when not nil, answer the upstream's challenges.
	Credentials Credentials
	// TTL is how long fetched content is kept; zero keeps it for good.
	TTL time.Duration
	// Freshness is how long a tag is served from the cache before the
	// upstream is asked whether it moved (DefaultFreshness when zero; a
	// negative value asks every time).
	Freshness time.Duration
	// Timeout bounds each upstream call (DefaultTimeout when zero).
	Timeout time.Duration
	// WriteTimeout bounds storing what was fetched: a manifest, or a blob
	// from the end of its download (proxy.cachewritetimeout; the upstream
	// Timeout when zero). A write that takes longer is given up: the
	// clients were served, and the next pull fetches again.
	WriteTimeout time.Duration
	// Transport, when not nil, replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// Options configure a Mirror.
type Options struct {
	Upstreams []Upstream
	// SpoolDir holds blobs while they are fetched (os.TempDir() when
	// empty): readers that join a fetch read what arrived from there.
	SpoolDir string
	// Fill, when not nil, hears of every blob or manifest fetched from an
	// upstream and stored (events marked as cache fills).
	Fill func(ctx context.Context, f Filled)
	Log  *slog.Logger
}

// Filled is one piece of content a mirror fetched and stored.
type Filled struct {
	Upstream   string // the upstream's URL
	Repository string // the local repository name
	Descriptor storage.Descriptor
	Tag        string // for a manifest fetched by tag
	Manifest   bool
}

// Mirror is a storage.Registry whose mirrored repositories fill
// themselves from their upstream. It is safe for concurrent use.
type Mirror struct {
	reg       *storage.Registry
	upstreams []*source // longest prefix first
	// all is set when every repository is mirrored (an empty prefix):
	// evicted blob data can then be deleted, as no pushed repository can
	// link it.
	all   bool
	spool string
	fill  func(ctx context.Context, f Filled)
	log   *slog.Logger

	fills fills
	// stores bounds the fills being written to storage at once (see
	// fill.store).
	stores  chan struct{}
	flights flights
	fresh   freshness
	// work are the fetches under way, which no client's request bounds.
	work sync.WaitGroup
}

// Wait waits for the fetches under way to end: each is stored or failed.
func (m *Mirror) Wait() { m.work.Wait() }

// source is one configured upstream with its client and counters.
type source struct {
	Upstream
	up    *upstream
	stats counters
}

// counters are one upstream's metrics.
type counters struct {
	hits, misses, bytes, errors, stale, evicted atomic.Int64
}

// Stats are one upstream's counters since start.
type Stats struct {
	Hits, Misses, BytesFetched, Errors, StaleServes, Evicted int64
}

// New returns a mirror over reg.
func New(reg *storage.Registry, opts Options) (*Mirror, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.SpoolDir == "" {
		opts.SpoolDir = os.TempDir()
	}
	m := &Mirror{reg: reg, spool: opts.SpoolDir, fill: opts.Fill, log: opts.Log}
	m.fills.m = map[fillKey]*fill{}
	m.stores = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))
	m.flights.m = map[string]*flight{}
	m.flights.work = &m.work
	m.fresh.m = map[string]time.Time{}
	seen := map[string]bool{}
	for _, u := range opts.Upstreams {
		u.Prefix = strings.Trim(u.Prefix, "/")
		if err := checkPrefix(u.Prefix, seen); err != nil {
			return nil, err
		}
		if u.Freshness == 0 {
			u.Freshness = DefaultFreshness
		}
		if u.Timeout <= 0 {
			u.Timeout = DefaultTimeout
		}
		if u.WriteTimeout <= 0 {
			u.WriteTimeout = u.Timeout
		}
		up, err := newUpstream(u.RemoteURL, u.Credentials, u.Timeout, u.Transport)
		if err != nil {
			return nil, err
		}
		m.upstreams = append(m.upstreams, &source{Upstream: u, up: up})
		if u.Prefix == "" {
			m.all = true
		}
	}
	slices.SortFunc(m.upstreams, func(a, b *source) int { return len(b.Prefix) - len(a.Prefix) })
	return m, nil
}

// route finds the upstream serving the repository name and the name the
// upstream knows it by.
func (m *Mirror) route(name string) (*source, string) {
	for _, s := range m.upstreams {
		if s.Prefix == "" {
			return s, name
		}
		if rest, ok := strings.CutPrefix(name, s.Prefix+"/"); ok && rest != "" {
			return s, rest
		}
	}
	return nil, ""
}

// Repository returns the repository name: a mirror of its upstream when
// an upstream serves it, else the ordinary repository.
func (m *Mirror) Repository(name string) storage.Repository {
	base := m.reg.Repository(name)
	src, remote := m.route(name)
	if src == nil || !storage.ValidRepositoryName(name) {
		return base
	}
	return &repository{Repository: base, m: m, src: src, remote: remote}
}

// Catalog lists the repositories with content here: what was pushed and
// what was fetched, not what the upstreams hold.
func (m *Mirror) Catalog(ctx context.Context, n int, last string) ([]string, error) {
	return m.reg.Catalog(ctx, n, last)
}

// Warns tells the API that answers may carry warnings (a stale copy).
func (m *Mirror) Warns() bool { return true }

// Driver is the driver the content is stored with.
func (m *Mirror) PartSize() int64 { return m.reg.PartSize() }

// Namespace answers the distribution spec's ns parameter: the prefix of
// the upstream configured for that registry name. An upstream serving
// every repository (the proxy section) answers no namespace, as
// Distribution does.
func (m *Mirror) Namespace(ns string) (string, bool) {
	for _, s := range m.upstreams {
		if s.Prefix != "" && s.Prefix == ns {
			return s.Prefix, true
		}
	}
	return "", false
}

// Stats returns each upstream's counters by its URL (and prefix, when it
// has one: "docker.io=https://registry-1.docker.io").
func (m *Mirror) Stats() map[string]Stats {
	out := make(map[string]Stats, len(m.upstreams))
	for _, s := range m.upstreams {
		key := s.RemoteURL
		if s.Prefix != "" {
			key = s.Prefix + "=" + s.RemoteURL
		}
		out[key] = Stats{
			Hits: s.stats.hits.Load(), Misses: s.stats.misses.Load(), BytesFetched: s.stats.bytes.Load(),
			Errors: s.stats.errors.Load(), StaleServes: s.stats.stale.Load(), Evicted: s.stats.evicted.Load(),
		}
	}
	return out
}

// flights lets one manifest fetch serve every concurrent request for it.
type flights struct {
	mu   sync.Mutex
	m    map[string]*flight
	work *sync.WaitGroup
}

type flight struct {
	// answered is closed once val and err are set: by the flight's
	// answer, or when it ends without one.
	answered chan struct{}
	done     chan struct{} // closed when fn has returned
	once     sync.Once
	val      storage.Manifest
	err      error
}

func (fl *flight) answer(m storage.Manifest, err error) {
	fl.once.Do(func() {
		fl.val, fl.err = m, err
		close(fl.answered)
	})
}

// do runs fn once for key among concurrent callers, each of whom gets its
// result. fn may hand its result out early (answer) and go on working:
// callers are answered at once, and a caller arriving before fn returns
// joins the flight rather than starting another. A caller that gives up
// (ctx) leaves fn running for the others.
func (f *flights) do(ctx context.Context, key string, fn func(answer func(storage.Manifest)) (storage.Manifest, error)) (storage.Manifest, error) {
	f.mu.Lock()
	fl, ok := f.m[key]
	if !ok {
		fl = &flight{answered: make(chan struct{}), done: make(chan struct{})}
		f.m[key] = fl
		f.work.Go(func() {
			m, err := fn(func(m storage.Manifest) { fl.answer(m, nil) })
			f.mu.Lock()
			delete(f.m, key)
			f.mu.Unlock()
			fl.answer(m, err) // a no-op after an early answer
			close(fl.done)
		})
	}
	f.mu.Unlock()
	select {
	case <-fl.answered:
		return fl.val, fl.err
	case <-ctx.Done():
		return storage.Manifest{}, ctx.Err()
	}
}

// settle waits for the flight of key to end when it has answered already:
// a request that comes after the answer finds what the flight stored, as
// if the flight had ended before answering. One that comes before joins
// the flight and is answered with its callers.
func (f *flights) settle(ctx context.Context, key string) error {
	f.mu.Lock()
	fl, ok := f.m[key]
	f.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-fl.answered:
	default:
		return nil
	}
	select {
	case <-fl.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// freshness remembers when each tag was last fetched or revalidated, in
// memory: after a restart the first request revalidates.
type freshness struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// maxFreshTags bounds the memory of freshness; past it everything is
// forgotten, which only costs a revalidation each.
const maxFreshTags = 100000

func (f *freshness) fresh(key string, window time.Duration) bool {
	if window < 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.m[key]
	return ok && time.Since(t) < window
}

func (f *freshness) mark(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.m) >= maxFreshTags {
		clear(f.m)
	}
	f.m[key] = time.Now()
}

func (f *freshness) forget(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, key)
}

// Fetching tells whether a fetch of d for repository repo is under way on
// this instance: until it ends, its bytes are served from the fetch, not
// from storage.
func (m *Mirror) Fetching(repo string, d digest.Digest) bool {
	return m.fills.filling(fillKey{repo, d})
}
