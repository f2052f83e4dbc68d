package main

import (
	"fmt"
	"log/slog"

	"github.com/berth-registry/berth/auth/htpasswd"
	"github.com/berth-registry/berth/auth/silly"
	"github.com/berth-registry/berth/auth/token"
	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/registry"
)

// setupAuth builds the access controller the auth section names; nil when
// the registry is open (no auth section, or auth.none).
func setupAuth(cfg *config.Config, log *slog.Logger) (registry.Authorizer, error) {
	switch cfg.Auth.Type() {
	case "", "none":
		return nil, nil
	case "htpasswd":
		h, limit := cfg.Auth.Htpasswd, cfg.Berth.Auth.Htpasswd
		c, err := htpasswd.New(htpasswd.Options{
			Realm:         h.Realm,
			Path:          h.Path,
			MaxFailures:   limit.MaxFailures,
			FailureWindow: limit.FailureWindow,
		}, log)
		if err != nil {
			return nil, fmt.Errorf("auth.htpasswd: %w", err)
		}
		return c.Authorize, nil
	case "token":
		t := cfg.Auth.Token
		c, err := token.New(token.Options{
			Realm:             t.Realm,
			Service:           t.Service,
			Issuer:            t.Issuer,
			RootCertBundle:    t.RootCertBundle,
			JWKS:              t.JWKS,
			AutoRedirect:      t.AutoRedirect,
			AutoRedirectPath:  t.AutoRedirectPath,
			SigningAlgorithms: t.SigningAlgorithms,
		}, log)
		if err != nil {
			return nil, fmt.Errorf("auth.token: %w", err)
		}
		return c.Authorize, nil
	case "silly":
		// As in Distribution: for development only, it checks nothing.
		log.Warn("auth.silly lets through any request with an Authorization header: for development only")
		return silly.New(cfg.Auth.Silly.Realm, cfg.Auth.Silly.Service).Authorize, nil
	}
	return nil, fmt.Errorf("auth: unknown type %q", cfg.Auth.Type())
}
