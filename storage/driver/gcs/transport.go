package gcs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// scopeFullControl lets the token read, write and delete objects.
const scopeFullControl = "https://www.googleapis.com/auth/devstorage.full_control"

// tokenTimeout bounds each request for an access token.
const tokenTimeout = 30 * time.Second

// newHTTPClient builds the client every request goes through: the access
// token of the key given, or of Application Default Credentials, on each
// request (none to an emulator without a key), the user agent, and
// maxconcurrency.
func newHTTPClient(ctx context.Context, p Params, c checked) (*http.Client, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = p.MaxConcurrency
	base.MaxIdleConns = max(base.MaxIdleConns, p.MaxConcurrency)
	// HTTP/1.1: over HTTP/2 the parts and ranges a writer or reader keeps
	// in flight would share one TCP connection, and one connection over a
	// long link carries a fraction of what several do.
	base.ForceAttemptHTTP2 = false
	base.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	var rt http.RoundTripper = base
	if c.keyJSON != nil || c.emulator == nil {
		// Tokens are refreshed long after New returns, each request with a
		// deadline of its own.
		tctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient,
			&http.Client{Transport: base, Timeout: tokenTimeout})
		var creds *google.Credentials
		var err error
		if c.keyJSON != nil {
			creds, err = google.CredentialsFromJSONWithType(tctx, c.keyJSON, google.ServiceAccount, scopeFullControl)
		} else {
			creds, err = google.FindDefaultCredentials(tctx, scopeFullControl)
		}
		if err != nil {
			return nil, fmt.Errorf("gcs: credentials: %w", err)
		}
		rt = &oauth2.Transport{Source: creds.TokenSource, Base: base}
	}
	if p.UserAgent != "" {
		rt = &userAgent{rt: rt, ua: p.UserAgent}
	}
	return &http.Client{Transport: limitTransport(rt, p.MaxConcurrency)}, nil
}

// userAgent sets the useragent parameter on every request.
type userAgent struct {
	rt http.RoundTripper
	ua string
}

func (u *userAgent) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", u.ua)
	return u.rt.RoundTrip(req)
}

// limitTransport bounds the requests in flight, as Distribution's
// maxconcurrency does, so that many simultaneous pushes do not exhaust
// connections. A slot is held until the response headers arrive, not while
// a body streams, so long downloads cannot starve other calls.
func limitTransport(rt http.RoundTripper, n int) http.RoundTripper {
	return &limited{rt: rt, sem: make(chan struct{}, n)}
}

type limited struct {
	rt  http.RoundTripper
	sem chan struct{}
}

func (l *limited) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case l.sem <- struct{}{}:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	defer func() { <-l.sem }()
	return l.rt.RoundTrip(req)
}

// httpStatus is the HTTP status an API error carries, or 0.
func httpStatus(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return 0
}

// statusError is an unexpected HTTP answer from GCS to the call op; body
// is the start of GCS's explanation.
type statusError struct {
	op   string
	code int
	body string
}

func (e *statusError) Error() string {
	return "gcs: " + e.op + ": " + http.StatusText(e.code) + ": " + e.body
}

// retryable reports whether a request that failed with err may succeed if
// sent again: throttling, server errors and broken connections.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if errors.Is(err, errCorruptUpload) {
		return true
	}
	switch code := httpStatus(err); {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return true
	case code != 0:
		return false
	}
	// No HTTP answer: retry when the connection failed, not when the
	// request could not be made at all.
	var op *net.OpError
	if errors.As(err, &op) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
		return true
	}
	// Connections lost as net/http reports it without a net.OpError, in
	// errors it does not export: a request (a POST, which it does not send
	// again itself) on an idle connection the server closed; and, should
	// the transport speak HTTP/2 again, a connection that stopped answering
	// pings or was closed after a GOAWAY. Google's client library retried
	// these too.
	msg := err.Error()
	for _, s := range []string{"server closed idle connection", "client connection lost", "server sent GOAWAY"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

const maxAttempts = 6

// backoff waits before attempt (1-based) with full jitter, capped at 16 s,
// or returns ctx's error.
func backoff(ctx context.Context, attempt int) error {
	ceil := min(time.Second<<(attempt-1), 16*time.Second)
	t := time.NewTimer(rand.N(ceil) + 50*time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
