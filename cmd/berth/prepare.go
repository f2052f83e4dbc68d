package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage/driver"
)

// startup is what serve builds from a configuration before it opens
// anything: the driver's section checked, the TLS configuration (its
// files read) and the access controller (its files read).
type startup struct {
	tls       *tls.Config // nil: plain HTTP
	authorize registry.Authorizer
}

// prepare checks everything serve refuses at start that needs no
// network and changes nothing: serve and `config check` both call it, so
// the check refuses exactly what serve would. Reading files is allowed
// (certificates, keys, htpasswd, rootcertbundle); creating them is not.
func prepare(cfg *config.Config, log *slog.Logger) (*startup, error) {
	var st startup
	var errs []error
	name, params := cfg.Storage.Driver()
	if err := driver.Check(name, params); err != nil {
		errs = append(errs, placeDriverError(cfg, name, err))
	}
	if cfg.HTTP.TLS.Enabled() {
		t, err := serverTLS(cfg.HTTP, log)
		if err != nil {
			errs = append(errs, placeError(cfg, "http.tls", err))
		}
		st.tls = t
	}
	a, err := setupAuth(cfg, log)
	if err != nil {
		errs = append(errs, placeError(cfg, "auth."+cfg.Auth.Type(), err))
	}
	st.authorize = a
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &st, nil
}

// placeError prefixes err with where the section key was set.
func placeError(cfg *config.Config, key string, err error) error {
	if where := cfg.Where(key); where != "" {
		return fmt.Errorf("%s: %w", where, err)
	}
	return err
}
