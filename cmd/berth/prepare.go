package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/middleware"
	"github.com/berth-registry/berth/storage/mirror"
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
// (certificates, keys, htpasswd, rootcertbundle, the CloudFront key, a
// mirror's password file, Redis's TLS files); creating them is not.
func prepare(cfg *config.Config, log *slog.Logger) (*startup, error) {
	var st startup
	var errs []error
	name, params := cfg.Storage.Driver()
	if err := driver.Check(name, params); err != nil {
		errs = append(errs, placeDriverError(cfg, name, err))
	}
	// Only these drivers leave a session where Distribution continues
	// it (driver.SharedCloser); elsewhere the key would be ignored.
	if cfg.Berth.Storage.DistributionUploads && name != "filesystem" && name != "s3" {
		errs = append(errs, placeKey(cfg, "berth.storage.distributionuploads",
			fmt.Errorf("works with the filesystem and s3 drivers, not %s", name)))
	}
	for _, a := range []struct{ key, network, addr string }{
		{"http.addr", cfg.HTTP.Net, cfg.HTTP.Addr},
		{"http.debug.addr", "tcp", cfg.HTTP.Debug.Addr},
	} {
		if err := checkListenAddr(a.network, a.addr); err != nil {
			errs = append(errs, placeKey(cfg, a.key, err))
		}
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
	// Their errors quote URLs, which may carry a password.
	if err := middleware.Check(storageMiddleware(cfg), log); err != nil {
		errs = append(errs, placeError(cfg, "middleware", errors.New(config.RedactString(err.Error()))))
	}
	if err := mirror.Check(mirrorUpstreams(cfg)); err != nil {
		key := "proxy"
		if len(cfg.Berth.Mirrors) > 0 {
			key = "berth.mirrors"
		}
		errs = append(errs, placeError(cfg, key, errors.New(config.RedactString(err.Error()))))
	}
	if cfg.Storage.Cache.BlobDescriptor == "redis" {
		// Its files (TLS) are read here; whether Redis answers needs the
		// network: serve and `config check --connect` ask it.
		if _, err := redisOptions(cfg.Redis); err != nil {
			errs = append(errs, placeKey(cfg, "redis.tls", err))
		}
	}
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

// checkListenAddr refuses a TCP address net.Listen could never take (no
// port, a port that is no number or service name) without binding it or
// resolving its host: whether the port is free is known only by serve.
func checkListenAddr(network, addr string) error {
	if addr == "" || (network != "" && !strings.HasPrefix(network, "tcp")) {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: expected host:port such as :5000 or 127.0.0.1:5000: %w", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	return nil
}
