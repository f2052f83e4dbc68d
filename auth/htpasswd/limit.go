package htpasswd

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// maxClients bounds the clients whose failures are counted. Past it, the
// failures of clients not yet counted go to one shared counter, so an
// attacker rotating addresses neither grows memory nor escapes the limit:
// it exhausts the shared budget, and new logins from uncounted clients
// wait with it (users already verified are let in by the cache).
const maxClients = 10000

// failures counts failed logins per client over a window. A client that
// failed max times gets 429 until its window, which starts at its first
// failure, ends. A success does not reset the count: an attacker holding
// one valid account cannot interleave it to keep guessing another's.
type failures struct {
	max    int
	window time.Duration
	limit  int // maxClients; tests lower it
	now    func() time.Time

	mu      sync.Mutex
	clients map[string]*failureCount
	// overflow counts the failures of clients that found the table full.
	overflow failureCount
}

type failureCount struct {
	n     int
	start time.Time
}

// newFailures returns nil (no limit) when max is not positive.
func newFailures(max int, window time.Duration) *failures {
	if max <= 0 {
		return nil
	}
	return &failures{max: max, window: window, limit: maxClients, now: time.Now, clients: make(map[string]*failureCount)}
}

// blocked reports whether client is out of attempts and, if so, how long
// until it may try again.
func (f *failures) blocked(client string) (time.Duration, bool) {
	if f == nil {
		return 0, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	c := f.counter(client, now, false)
	if c == nil || c.n < f.max {
		return 0, false
	}
	return c.start.Add(f.window).Sub(now), true
}

// fail records one failed login of client and reports whether it was the
// one that used up the client's budget.
func (f *failures) fail(client string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	c := f.counter(client, now, true)
	if c.n == 0 {
		c.start = now
	}
	c.n++
	return c.n == f.max
}

// counter returns client's live counter: its own, the shared one when the
// table is full, or nil when it has none and create is false. A counter
// whose window ended starts again from zero.
func (f *failures) counter(client string, now time.Time, create bool) *failureCount {
	c, ok := f.clients[client]
	switch {
	case ok:
	case len(f.clients) < f.limit || f.sweep(now):
		if !create {
			return nil
		}
		c = &failureCount{}
		f.clients[client] = c
	default:
		c = &f.overflow
	}
	if c.n > 0 && !now.Before(c.start.Add(f.window)) {
		*c = failureCount{}
	}
	return c
}

// sweep drops counters whose window ended and reports whether that made
// room. It runs only when the table is full.
func (f *failures) sweep(now time.Time) bool {
	for k, c := range f.clients {
		if !now.Before(c.start.Add(f.window)) {
			delete(f.clients, k)
		}
	}
	return len(f.clients) < f.limit
}

// clientKey is who a request counts as: the connection's address, never a
// header such as X-Forwarded-For that the client writes itself. An IPv6
// client is its /64, which one host can rotate through at will.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, err := addr.Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return addr.String()
}
