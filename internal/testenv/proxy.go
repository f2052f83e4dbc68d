package testenv

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// StoreProxy stands between a client (a driver, a registry) and the
// object store at upstream, and returns the URL to give the client in its
// place: the proxy's address followed by upstream's path (Azure's
// endpoint ends in the account). Every request goes to handle first,
// which watches it, answers it itself or passes it on through next.
// keepHost sends the client's Host on, for stores whose signatures cover
// it (S3: the client signed for the proxy's address).
func StoreProxy(t testing.TB, upstream string, keepHost bool, handle func(w http.ResponseWriter, r *http.Request, next http.Handler)) string {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	base := *target
	base.Path, base.RawPath = "", ""
	next := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(&base)
		if keepHost {
			r.Out.Host = r.In.Host
		}
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, next)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + target.Path
}

// Requests notes the requests a StoreProxy passes, as "METHOD
// /path?query", so that a test can count the round trips an operation
// costs. The zero value is ready.
type Requests struct {
	mu   sync.Mutex
	reqs []string
}

// Note records r.
func (q *Requests) Note(r *http.Request) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reqs = append(q.reqs, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
}

// Count returns how many of the requests noted since the last Take match.
func (q *Requests) Count(match func(string) bool) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, r := range q.reqs {
		if match(r) {
			n++
		}
	}
	return n
}

// Take returns the requests noted since the last Take.
func (q *Requests) Take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.reqs
	q.reqs = nil
	return r
}
