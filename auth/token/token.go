// Package token is the Docker registry token authentication spec: clients
// get a signed JWT from a token service and present it as a bearer token.
// The registry trusts the token service's keys (a root certificate bundle
// for x5c chains, or a JWKS for kid lookups) and enforces the access
// claims per repository and action. It issues no tokens.
package token

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-registry/berth/registry"
)

// leeway is the clock skew allowed between the token service and Berth
// on exp, nbf and iat.
const leeway = time.Minute

// defaultAlgorithms are the asymmetric algorithms accepted when
// signingalgorithms is not set. HMAC would let anyone holding the
// verification secret mint tokens, and "none" is no signature at all:
// neither is ever accepted.
var defaultAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// Errors a token is refused with; the cause of a 401, logged, never sent.
var (
	ErrNoToken      = errors.New("no bearer token")
	ErrUntrustedKey = errors.New("token signed by an untrusted key")
	ErrClaims       = errors.New("token claims invalid")
)

// Options are auth.token's keys.
type Options struct {
	Realm             string
	Service           string
	Issuer            string
	RootCertBundle    string
	JWKS              string
	AutoRedirect      bool
	AutoRedirectPath  string
	SigningAlgorithms []string
}

// Controller is the token access controller.
type Controller struct {
	opts  Options
	algs  []jose.SignatureAlgorithm
	trust *trust
	log   *slog.Logger
	now   func() time.Time
}

// New checks the options and loads the trusted keys.
func New(opts Options, log *slog.Logger) (*Controller, error) {
	if opts.Realm == "" && !opts.AutoRedirect {
		return nil, errors.New("realm is required")
	}
	if opts.Service == "" {
		return nil, errors.New("service is required")
	}
	if opts.Issuer == "" {
		return nil, errors.New("issuer is required")
	}
	if opts.RootCertBundle == "" && opts.JWKS == "" {
		return nil, errors.New("rootcertbundle or jwks is required")
	}
	if opts.AutoRedirectPath == "" {
		opts.AutoRedirectPath = "/auth/token"
	}
	algs, err := algorithms(opts.SigningAlgorithms)
	if err != nil {
		return nil, err
	}
	tr, err := loadTrust(opts.RootCertBundle, opts.JWKS)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Controller{opts: opts, algs: algs, trust: tr, log: log, now: time.Now}, nil
}

// algorithms turns signingalgorithms into go-jose's names, refusing any
// that is not asymmetric.
func algorithms(names []string) ([]jose.SignatureAlgorithm, error) {
	if len(names) == 0 {
		return defaultAlgorithms, nil
	}
	var out []jose.SignatureAlgorithm
	for _, n := range names {
		a := jose.SignatureAlgorithm(n)
		if !slices.Contains(defaultAlgorithms, a) {
			return nil, fmt.Errorf("signingalgorithms: %q is not accepted (use RS*, PS*, ES* or EdDSA)", n)
		}
		out = append(out, a)
	}
	return out, nil
}

// accessClaim is one entry of the token's "access" claim.
type accessClaim struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

type claims struct {
	jwt.Claims
	Access []accessClaim `json:"access"`
}

// Authorize verifies the bearer token and checks that its access claims
// grant everything in access. Any failure is a 401 with a challenge
// naming the scope needed, so the client can fetch a better token.
func (c *Controller) Authorize(w http.ResponseWriter, r *http.Request, access []registry.Access) (*http.Request, error) {
	raw, ok := bearer(r)
	if !ok {
		return nil, c.challenge(w, r, access, "", "authentication required", ErrNoToken)
	}
	cl, err := c.verify(raw)
	if err != nil {
		c.log.DebugContext(r.Context(), "token refused", "error", err)
		return nil, c.challenge(w, r, access, "invalid_token", "invalid token", err)
	}
	for _, a := range access {
		for _, action := range a.Actions {
			if !granted(cl.Access, a.Type, a.Name, action) {
				return nil, c.challenge(w, r, access, "insufficient_scope", "insufficient scope",
					fmt.Errorf("%s:%s:%s not granted to %q", a.Type, a.Name, action, cl.Subject))
			}
		}
	}
	ctx := registry.WithUser(r.Context(), cl.Subject)
	return r.WithContext(registry.WithPullable(ctx, pullable(cl.Access))), nil
}

// pullable lists the repositories the token grants pull (or *) on, for a
// mount without from.
func pullable(cls []accessClaim) registry.Pullable {
	var p registry.Pullable
	for _, a := range cls {
		if a.Type == "repository" && (slices.Contains(a.Actions, "pull") || slices.Contains(a.Actions, "*")) {
			p.Repositories = append(p.Repositories, a.Name)
		}
	}
	return p
}

func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// verify checks the signature, then issuer, audience and times.
func (c *Controller) verify(raw string) (*claims, error) {
	tok, err := jwt.ParseSigned(raw, c.algs)
	if err != nil {
		return nil, err
	}
	if len(tok.Headers) != 1 {
		return nil, errors.New("token has more than one signature")
	}
	key, err := c.trust.key(tok.Headers[0])
	if err != nil {
		return nil, err
	}
	var cl claims
	if err := tok.Claims(key, &cl); err != nil {
		return nil, err
	}
	if cl.Expiry == nil {
		return nil, fmt.Errorf("%w: no exp", ErrClaims)
	}
	want := jwt.Expected{Issuer: c.opts.Issuer, AnyAudience: jwt.Audience{c.opts.Service}, Time: c.now()}
	if err := cl.ValidateWithLeeway(want, leeway); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClaims, err)
	}
	return &cl, nil
}

// granted reports whether a claim names the resource and the action (or
// "*"). Anything not granted is denied.
func granted(cls []accessClaim, typ, name, action string) bool {
	for _, a := range cls {
		if a.Type == typ && a.Name == name && (slices.Contains(a.Actions, action) || slices.Contains(a.Actions, "*")) {
			return true
		}
	}
	return false
}

// challenge sets the Bearer challenge with the scope the request needs
// and returns the 401.
func (c *Controller) challenge(w http.ResponseWriter, r *http.Request, access []registry.Access, code, message string, cause error) error {
	realm := c.opts.Realm
	if c.opts.AutoRedirect {
		scheme := "https"
		if r.TLS == nil {
			scheme = "http"
		}
		realm = scheme + "://" + r.Host + c.opts.AutoRedirectPath
	}
	v := fmt.Sprintf("Bearer realm=%q,service=%q", realm, c.opts.Service)
	if s := scope(access); s != "" {
		v += fmt.Sprintf(",scope=%q", s)
	}
	if code != "" {
		v += fmt.Sprintf(",error=%q", code)
	}
	w.Header().Set("WWW-Authenticate", v)
	return &registry.Error{Code: registry.CodeUnauthorized, Message: message, Detail: detail(access), Err: cause}
}

// scope is the scope parameter: "type:name:action,action" per access,
// space-separated.
func scope(access []registry.Access) string {
	var parts []string
	for _, a := range access {
		parts = append(parts, a.Type+":"+a.Name+":"+strings.Join(a.Actions, ","))
	}
	return strings.Join(parts, " ")
}

// detail is the access asked for, as Distribution sends it.
func detail(access []registry.Access) any {
	if len(access) == 0 {
		return nil
	}
	out := make([]map[string]any, 0, len(access))
	for _, a := range access {
		out = append(out, map[string]any{"Type": a.Type, "Name": a.Name, "Action": strings.Join(a.Actions, ",")})
	}
	return out
}
