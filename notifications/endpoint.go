package notifications

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Defaults for the keys an endpoint leaves out: Distribution's for
// timeout, threshold and backoff.
const (
	DefaultTimeout       = time.Second
	DefaultThreshold     = 10
	DefaultBackoff       = time.Second
	DefaultMaxBackoff    = time.Minute
	DefaultSpoolMaxBytes = 256 << 20
	// DefaultPullDelay is how long a pull event may wait in memory before
	// it is written to the spool, with every other event of that moment:
	// a pull is not worth an fsync of its own, and its request does not
	// wait for it. A crash loses the pulls of that moment, never a push,
	// mount or delete.
	DefaultPullDelay = 10 * time.Millisecond
	// maxBufferedPulls caps the pulls waiting in memory for a write (a
	// stalled disk must not let a flood of pulls fill memory); past it new
	// pulls are dropped and counted.
	maxBufferedPulls = 4 << 20
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("notifications: closed")

// EndpointConfig is one webhook.
type EndpointConfig struct {
	Name    string
	URL     string
	Headers http.Header
	// Timeout bounds one delivery attempt, response included.
	Timeout time.Duration
	// Threshold is how many failures in a row make the endpoint "failing":
	// logged once at warn level and reported by Metrics, until a delivery
	// succeeds again. Distribution's breaker uses it to start backing off;
	// Berth backs off from the first failure.
	Threshold int
	// Backoff is the wait after the first failure; it doubles with each
	// failure in a row, up to MaxBackoff (or Backoff when that is larger).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// IgnoredMediaTypes and IgnoredActions name events never sent here
	// (ignoredmediatypes and ignore.mediatypes, ignore.actions).
	IgnoredMediaTypes []string
	IgnoredActions    []string
	// MediaType is the request's Content-Type: MediaTypeV2 (the default)
	// or MediaTypeV1.
	MediaType string
	// Spool is the directory of this endpoint's undelivered events; the
	// Notifier fills it from Config.Spool when empty.
	Spool string
	// SpoolMaxBytes caps the spool: past it the oldest pulls are dropped,
	// then, when only pushes, mounts and deletes are left, the oldest of
	// those.
	SpoolMaxBytes int64
	// Transport sends the requests; nil uses a transport of the endpoint's
	// own, so a hanging endpoint holds no connection another one needs.
	Transport http.RoundTripper

	// pullDelay is how long pulls wait in memory to be written with the
	// next batch; DefaultPullDelay when zero. Tests set it.
	pullDelay time.Duration
}

func (c *EndpointConfig) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Threshold <= 0 {
		c.Threshold = DefaultThreshold
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.Backoff)
	if c.MediaType == "" {
		c.MediaType = MediaTypeV2
	}
	if c.SpoolMaxBytes <= 0 {
		c.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if c.pullDelay <= 0 {
		c.pullDelay = DefaultPullDelay
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
}

// Metrics describe one endpoint's queue and deliveries.
type Metrics struct {
	Name string
	// URL is the endpoint's URL with any password masked.
	URL string
	// Pending and PendingBytes are what the spool holds; Pending also
	// counts events waiting in memory to be written.
	Pending      int
	PendingBytes int64
	// Delivered counts events the endpoint answered 2xx to.
	Delivered uint64
	// Failed counts failed delivery attempts (each retry counts).
	Failed uint64
	// Dropped counts events removed undelivered: pulls, and then the
	// oldest of the others, when the spool was full; pulls when too many
	// waited in memory for a write; a spooled event that could not be
	// read. DroppedByAction splits it by the events' actions.
	Dropped         uint64
	DroppedByAction map[string]uint64
	// SpoolErrors counts events that could not be written to the spool,
	// and so will never be sent.
	SpoolErrors uint64
	// SpoolWrites counts the batches written to the spool and SpoolSyncs
	// the fsyncs they took.
	SpoolWrites, SpoolSyncs uint64
	// LastError is the latest failure, of delivery or of the spool.
	LastError   string
	LastErrorAt time.Time
	// Failing is set after Threshold failures in a row, until a delivery
	// succeeds.
	Failing bool
}

// endpoint is one webhook's filter, durable queue and delivery loop.
type endpoint struct {
	cfg           EndpointConfig
	log           *slog.Logger
	client        *http.Client
	ignoreTypes   []string
	ignoreActions []string
	spool         *spool

	mu sync.Mutex
	// pulls and changes are the spooled events, each oldest first; the
	// one with the lower sequence number of their heads is the next to
	// send.
	pulls, changes []entry
	bytes          int64  // spooled, in both
	buf            *batch // events waiting to be written
	writing        int    // events of the batch being written
	next           uint64
	closed         bool
	streak         int // failures in a row
	m              Metrics
	// droppedUnlogged counts drops since the last log line about them, so
	// a full spool logs once a minute rather than once per event; the
	// same for spool write failures of pulls, which no request reports.
	droppedUnlogged uint64
	dropLoggedAt    time.Time
	failedUnlogged  uint64
	failureLoggedAt time.Time

	urgent  chan struct{} // a push, mount or delete waits for a write
	lazy    chan struct{} // pulls wait for a write
	closing chan struct{} // closed by close: write what is left and stop
	flushed chan struct{} // closed when the writer stopped
	wake    chan struct{} // the sender has something new
	cancel  context.CancelFunc
	done    chan struct{} // closed when the sender stopped
}

// openEndpoint opens cfg's spool and starts delivering what it holds.
func openEndpoint(cfg EndpointConfig, log *slog.Logger) (*endpoint, error) {
	cfg.defaults()
	if cfg.Spool == "" {
		return nil, fmt.Errorf("endpoint %s: no spool directory", cfg.Name)
	}
	if cfg.MediaType != MediaTypeV2 && cfg.MediaType != MediaTypeV1 {
		return nil, fmt.Errorf("endpoint %s: media type %q is neither %s nor %s", cfg.Name, cfg.MediaType, MediaTypeV2, MediaTypeV1)
	}
	sp, entries, bad, err := openSpool(cfg.Spool)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", cfg.Name, err)
	}
	e := &endpoint{
		cfg:           cfg,
		log:           log.With("endpoint", cfg.Name),
		client:        &http.Client{Transport: cfg.Transport},
		ignoreTypes:   slices.Clone(cfg.IgnoredMediaTypes),
		ignoreActions: slices.Clone(cfg.IgnoredActions),
		spool:         sp,
		buf:           newBatch(),
		urgent:        make(chan struct{}, 1),
		lazy:          make(chan struct{}, 1),
		closing:       make(chan struct{}),
		flushed:       make(chan struct{}),
		wake:          make(chan struct{}, 1),
		done:          make(chan struct{}),
	}
	e.m.Name = cfg.Name
	e.m.URL = redactURL(cfg.URL)
	// Every action is reported, at zero until one of its events is dropped.
	e.m.DroppedByAction = map[string]uint64{ActionPull: 0, ActionPush: 0, ActionMount: 0, ActionDelete: 0}
	if bad > 0 {
		e.log.Error("notification spool lines unreadable, skipped", "lines", bad)
	}
	for _, en := range entries {
		e.push(en)
	}
	if n := len(entries); n > 0 {
		e.next = entries[n-1].seq + 1
	}
	// The cap may have been lowered since the spool was written.
	e.mu.Lock()
	drop, gone := e.trim()
	e.mu.Unlock()
	e.forget(drop, gone)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go e.writeLoop()
	go e.run(ctx)
	return e, nil
}

// ignored reports whether the endpoint does not want ev.
func (e *endpoint) ignored(ev *Event) bool {
	return slices.Contains(e.ignoreActions, ev.Action) || slices.Contains(e.ignoreTypes, ev.Target.MediaType)
}

// metrics returns a snapshot.
func (e *endpoint) metrics() Metrics {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.m
	m.DroppedByAction = maps.Clone(e.m.DroppedByAction)
	m.Pending = len(e.pulls) + len(e.changes) + e.writing + len(e.buf.recs)
	m.PendingBytes = e.bytes
	m.Failing = e.streak >= e.cfg.Threshold
	return m
}

// close writes what waits in memory, stops delivery and closes the spool;
// what is pending stays spooled for the next start.
func (e *endpoint) close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	close(e.closing)
	<-e.flushed
	e.cancel()
	var err error
	select {
	case <-e.done:
	case <-ctx.Done():
		err = fmt.Errorf("endpoint %s: %w", e.cfg.Name, ctx.Err())
	}
	if cerr := e.spool.close(); err == nil && cerr != nil {
		err = fmt.Errorf("endpoint %s: %w", e.cfg.Name, cerr)
	}
	return err
}
