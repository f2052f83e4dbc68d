// Package health runs the periodic checks of the health section (the
// storage driver, files, HTTP and TCP endpoints) and reports their status,
// as JSON on /debug/health and as one error for the registry's /v2/. It
// knows nothing of the registry's content.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultInterval is how often a check runs when its interval is not set.
const DefaultInterval = 10 * time.Second

// Check probes one thing and returns nil when it is healthy.
type Check func(ctx context.Context) error

// Checker runs checks and keeps their status. Add every check, then Start
// it (or drive it with RunOnce); a check added after Start runs from then
// on. It is safe for concurrent use.
type Checker struct {
	log *slog.Logger

	mu      sync.Mutex
	checks  []*check
	started context.Context // set by Start
}

type check struct {
	name      string
	interval  time.Duration
	threshold int
	run       Check
	advisory  bool // reported, but does not fail Err

	// Guarded by Checker.mu.
	failures int   // consecutive, capped at threshold
	last     error // the latest failure
}

// New returns a Checker without checks. A nil log discards.
func New(log *slog.Logger) *Checker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{log: log}
}

// Add registers a check run every interval (DefaultInterval when zero).
// It fails once threshold runs in a row have failed (a threshold of zero
// or one: the first failure) and passes again at the first success, as
// in CNCF Distribution. Until it first runs, a check passes.
func (c *Checker) Add(name string, interval time.Duration, threshold int, run Check) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if threshold < 1 {
		threshold = 1
	}
	ch := &check{name: name, interval: interval, threshold: threshold, run: run}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks = append(c.checks, ch)
	if c.started != nil {
		go c.loop(c.started, ch)
	}
}

// AddAdvisory registers a check, as Add does, for a dependency the
// registry degrades without rather than fails: a failure shows in Status
// and /debug/health, but not in Err, so /v2/ keeps answering and a load
// balancer probing it keeps the instance.
func (c *Checker) AddAdvisory(name string, interval time.Duration, threshold int, run Check) {
	c.Add(name, interval, threshold, run)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[len(c.checks)-1].advisory = true
}

// Start runs every check now and then at its interval, each in its own
// goroutine, until ctx is done.
func (c *Checker) Start(ctx context.Context) {
	c.mu.Lock()
	c.started = ctx
	checks := append([]*check(nil), c.checks...)
	c.mu.Unlock()
	for _, ch := range checks {
		go c.loop(ctx, ch)
	}
}

// loop runs ch now and then at its interval until ctx is done.
func (c *Checker) loop(ctx context.Context, ch *check) {
	t := time.NewTicker(ch.interval)
	defer t.Stop()
	for {
		c.runCheck(ctx, ch)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce runs every check once, in turn, and records the results.
func (c *Checker) RunOnce(ctx context.Context) {
	c.mu.Lock()
	checks := append([]*check(nil), c.checks...)
	c.mu.Unlock()
	for _, ch := range checks {
		c.runCheck(ctx, ch)
	}
}

func (c *Checker) runCheck(ctx context.Context, ch *check) {
	// A check never outlives its interval, so a hung backend shows as a
	// failure rather than as a check that never reports.
	cctx, cancel := context.WithTimeout(ctx, ch.interval)
	err := ch.run(cctx)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: the result says nothing of the target
	}
	c.mu.Lock()
	wasFailing := ch.failures >= ch.threshold
	if err == nil {
		ch.failures, ch.last = 0, nil
	} else {
		if ch.failures < ch.threshold {
			ch.failures++
		}
		ch.last = err
	}
	failing := ch.failures >= ch.threshold
	c.mu.Unlock()
	switch {
	case failing && !wasFailing:
		c.log.Warn("health check failing", "check", ch.name, "error", err)
	case !failing && wasFailing:
		c.log.Info("health check passing", "check", ch.name)
	}
}

// Status returns the error of every failing check by name; an empty map
// means healthy.
func (c *Checker) Status() map[string]string {
	return c.failing(true)
}

// failing returns the error of every failing check by name, the advisory
// ones too when asked.
func (c *Checker) failing(advisory bool) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for _, ch := range c.checks {
		if ch.failures >= ch.threshold && (advisory || !ch.advisory) {
			out[ch.name] = ch.last.Error()
		}
	}
	return out
}

// Err is nil while every check but the advisory ones passes, and
// otherwise names the failing ones: what the registry's /v2/ asks before
// answering.
func (c *Checker) Err() error {
	st := c.failing(false)
	if len(st) == 0 {
		return nil
	}
	names := make([]string, 0, len(st))
	for n := range st {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Errorf("%w: %s", ErrUnhealthy, strings.Join(names, ", "))
}

// ErrUnhealthy is what Err wraps while a check fails.
var ErrUnhealthy = errors.New("health checks failing")

// ServeHTTP answers GET and HEAD with the failing checks as a JSON object
// of name to error ({} when healthy), with 503 while any fails and 200
// otherwise: Distribution's /debug/health.
func (c *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	st := c.Status()
	body, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if len(st) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if r.Method == http.MethodGet {
		_, _ = w.Write(append(body, '\n'))
	}
}
