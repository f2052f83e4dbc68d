package notifications

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// SpoolMaxBytes caps the spool: past it the oldest events are dropped.
	SpoolMaxBytes int64
	// Transport sends the requests; nil uses a transport of the endpoint's
	// own, so a hanging endpoint holds no connection another one needs.
	Transport http.RoundTripper
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
	if c.Transport == nil {
		c.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
}

// Metrics describe one endpoint's queue and deliveries.
type Metrics struct {
	Name string
	// URL is the endpoint's URL with any password masked.
	URL string
	// Pending and PendingBytes are what the spool holds.
	Pending      int
	PendingBytes int64
	// Delivered counts events the endpoint answered 2xx to.
	Delivered uint64
	// Failed counts failed delivery attempts (each retry counts).
	Failed uint64
	// Dropped counts events removed undelivered: the oldest when the spool
	// was full, or a spooled file that could not be read.
	Dropped uint64
	// SpoolErrors counts events that could not be written to the spool,
	// and so will never be sent.
	SpoolErrors uint64
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

	mu      sync.Mutex
	pending []entry // oldest first; pending[0] is the one being delivered
	bytes   int64
	next    uint64
	closed  bool
	streak  int // failures in a row
	m       Metrics
	// droppedUnlogged counts drops since the last log line about them, so
	// a full spool logs once a minute rather than once per event.
	droppedUnlogged uint64
	dropLoggedAt    time.Time

	writers sync.WaitGroup // Publish calls writing to the spool
	wake    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
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
	sp, entries, err := openSpool(cfg.Spool)
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
		pending:       entries,
		wake:          make(chan struct{}, 1),
		done:          make(chan struct{}),
	}
	e.m.Name = cfg.Name
	e.m.URL = redactURL(cfg.URL)
	for _, en := range entries {
		e.bytes += en.size
	}
	if n := len(entries); n > 0 {
		e.next = entries[n-1].seq + 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go e.run(ctx)
	return e, nil
}

// ignored reports whether the endpoint does not want ev.
func (e *endpoint) ignored(ev *Event) bool {
	return slices.Contains(e.ignoreActions, ev.Action) || slices.Contains(e.ignoreTypes, ev.Target.MediaType)
}

// publish spools the records the endpoint wants. It returns once they are
// on stable storage.
func (e *endpoint) publish(recs []record) error {
	var errs []error
	for _, r := range recs {
		if e.ignored(r.ev) {
			continue
		}
		if err := e.enqueue(r.data); err != nil {
			errs = append(errs, fmt.Errorf("endpoint %s: %w", e.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (e *endpoint) enqueue(data []byte) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	seq := e.next
	e.next++
	e.writers.Add(1)
	e.mu.Unlock()
	defer e.writers.Done()

	// Writes run in parallel; only the sequence number is taken under the
	// lock, so one slow fsync does not serialize every request.
	if err := e.spool.write(seq, data); err != nil {
		e.mu.Lock()
		e.m.SpoolErrors++
		e.m.LastError, e.m.LastErrorAt = err.Error(), time.Now()
		e.mu.Unlock()
		return err
	}

	e.mu.Lock()
	// Concurrent writers may finish out of order; keep the queue in
	// sequence order, which is also the order a restart reads.
	i := len(e.pending)
	for i > 0 && e.pending[i-1].seq > seq {
		i--
	}
	e.pending = slices.Insert(e.pending, i, entry{seq: seq, size: int64(len(data))})
	e.bytes += int64(len(data))
	var drop []entry
	for e.bytes > e.cfg.SpoolMaxBytes && len(e.pending) > 1 {
		drop = append(drop, e.pending[0])
		e.bytes -= e.pending[0].size
		e.pending = e.pending[1:]
	}
	var logDropped uint64
	if len(drop) > 0 {
		e.m.Dropped += uint64(len(drop))
		e.droppedUnlogged += uint64(len(drop))
		if now := time.Now(); now.Sub(e.dropLoggedAt) >= time.Minute {
			logDropped, e.droppedUnlogged, e.dropLoggedAt = e.droppedUnlogged, 0, now
		}
	}
	total, bytes := e.m.Dropped, e.bytes
	e.mu.Unlock()

	for _, d := range drop {
		if err := e.spool.remove(d.seq); err != nil {
			e.log.Error("notification spool remove failed", "error", err)
		}
	}
	if logDropped > 0 {
		e.log.Warn("notification spool full, oldest events dropped",
			"dropped", logDropped, "dropped_total", total, "spool_bytes", bytes, "spool_max_bytes", e.cfg.SpoolMaxBytes)
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

// metrics returns a snapshot.
func (e *endpoint) metrics() Metrics {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.m
	m.Pending, m.PendingBytes = len(e.pending), e.bytes
	m.Failing = e.streak >= e.cfg.Threshold
	return m
}

// close stops delivery; what is pending stays spooled for the next start.
func (e *endpoint) close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	var err error
	select {
	case <-e.done:
	case <-ctx.Done():
		err = fmt.Errorf("endpoint %s: %w", e.cfg.Name, ctx.Err())
	}
	e.writers.Wait()
	if cerr := e.spool.close(); err == nil && cerr != nil {
		err = fmt.Errorf("endpoint %s: %w", e.cfg.Name, cerr)
	}
	return err
}
