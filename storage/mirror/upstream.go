package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/storage"
)

// DefaultTimeout bounds every upstream call that is not a blob body: the
// whole request, token fetches included. A blob body is bounded by the
// same time without a byte arriving instead.
const DefaultTimeout = 30 * time.Second

// maxUpstreamDoc bounds a manifest, tag list, referrers index or token
// answer read from an upstream.
const maxUpstreamDoc = 4 << 20

// upstream is one registry a mirror fetches from: its base URL, the
// credentials it is given, and the tokens its auth server handed out.
type upstream struct {
	base    *url.URL
	creds   Credentials
	timeout time.Duration
	client  *http.Client

	mu     sync.Mutex
	tokens map[string]token // by scope
	basic  bool             // the upstream asked for basic auth
}

type token struct {
	value   string
	expires time.Time
}

func newUpstream(remote string, creds Credentials, timeout time.Duration, rt http.RoundTripper) (*upstream, error) {
	u, err := url.Parse(strings.TrimSuffix(remote, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mirror: remote url %q: want http(s)://host[:port]", remote)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if rt == nil {
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}
	}
	up := &upstream{base: u, creds: creds, timeout: timeout, tokens: map[string]token{}}
	up.client = &http.Client{Transport: rt, CheckRedirect: up.checkRedirect}
	return up, nil
}

// checkRedirect keeps credentials on the upstream's own host: a blob
// redirected to an object store gets there without the Authorization
// header, whatever net/http's own rule would allow.
func (u *upstream) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != u.base.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

// String names the upstream in errors and logs.
func (u *upstream) String() string { return u.base.String() }

// fail wraps a transport failure as the storage error the API answers with
// 502 or 503, naming the upstream.
func (u *upstream) fail(what string, err error) error {
	sentinel := storage.ErrUpstreamUnavailable
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		sentinel = storage.ErrUpstreamTimeout
	}
	return &storage.Error{Err: sentinel, Detail: fmt.Sprintf("%s: %s: %v", u, what, err)}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// statusError turns an upstream answer that is neither success nor "not
// found" into an error naming the upstream.
func (u *upstream) statusError(what string, resp *http.Response) error {
	return &storage.Error{Err: storage.ErrUpstreamUnavailable, Detail: fmt.Sprintf("%s: %s: answered %s", u, what, resp.Status)}
}

// do sends a request for path (below /v2/) with the scope's credentials,
// answering the upstream's challenge once when it asks. The caller closes
// the body. The context bounds the whole exchange.
func (u *upstream) do(ctx context.Context, method, path string, query url.Values, header http.Header, scope string) (*http.Response, error) {
	target := *u.base
	target.Path = strings.TrimSuffix(u.base.Path, "/") + "/v2/" + path
	target.RawQuery = query.Encode()
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, target.String(), nil)
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if err := u.authorize(ctx, req, scope); err != nil {
			return nil, err
		}
		resp, err := u.client.Do(req)
		if err != nil {
			return nil, u.fail(method+" "+path, err)
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, nil
		}
		challenge := resp.Header.Values("WWW-Authenticate")
		drain(resp)
		if err := u.answer(ctx, challenge, scope); err != nil {
			return nil, err
		}
	}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// authorize sets what the upstream asked for earlier: a bearer token for
// the scope, or basic credentials. A request before any challenge goes
// without, as the upstream may well allow anonymous pulls.
func (u *upstream) authorize(ctx context.Context, req *http.Request, scope string) error {
	u.mu.Lock()
	tok, hasTok := u.tokens[scope]
	basic := u.basic
	u.mu.Unlock()
	switch {
	case hasTok && time.Now().Before(tok.expires):
		req.Header.Set("Authorization", "Bearer "+tok.value)
	case basic && u.creds != nil:
		user, pass, err := u.creds.Get(ctx)
		if err != nil {
			return u.fail("credentials", err)
		}
		req.SetBasicAuth(user, pass)
	}
	return nil
}

// answer follows a WWW-Authenticate challenge: basic means send the
// credentials from now on, bearer means fetch a token from the realm the
// upstream named, for the scope.
func (u *upstream) answer(ctx context.Context, challenges []string, scope string) error {
	for _, c := range challenges {
		scheme, params := parseChallenge(c)
		switch scheme {
		case "basic":
			if u.creds == nil {
				return u.denied("the upstream asks for credentials and none are configured")
			}
			u.mu.Lock()
			u.basic = true
			u.mu.Unlock()
			return nil
		case "bearer":
			tok, err := u.fetchToken(ctx, params, scope)
			if err != nil {
				return err
			}
			u.mu.Lock()
			u.tokens[scope] = tok
			u.mu.Unlock()
			return nil
		}
	}
	return u.denied("unauthorized, with no challenge Berth can answer")
}

func (u *upstream) denied(msg string) error {
	return &storage.Error{Err: storage.ErrUpstreamUnavailable, Detail: fmt.Sprintf("%s: %s", u, msg)}
}
