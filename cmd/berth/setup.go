package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/configs"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/middleware"

	// The storage drivers register themselves by name. The cloud ones are
	// linked from drivers_*.go, each of which a build tag can leave out.
	_ "github.com/berth-registry/berth/storage/driver/filesystem"
	_ "github.com/berth-registry/berth/storage/driver/inmemory"
)

// loadConfig reads the file named by args (at most one) or, with none, the
// embedded default; REGISTRY_* variables in environ override either.
func loadConfig(args []string, environ []string) (*config.Config, error) {
	switch len(args) {
	case 0:
		return config.Parse("embedded default config", configs.Default, environ)
	case 1:
		return config.Load(args[0], environ)
	default:
		return nil, fmt.Errorf("expected at most one config file, got %d arguments", len(args))
	}
}

// newLogger builds the logger the log section asks for.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level, AddSource: c.ReportCaller}
	var h slog.Handler
	if strings.EqualFold(c.Formatter, "json") {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	log := slog.New(h)
	for k, v := range c.Fields {
		log = log.With(k, v)
	}
	return log
}

// openStorage opens the configured driver and the content model over it,
// with the shared cache when one is configured, so that what a collection
// deletes is forgotten by every serving instance. close releases the
// shared cache.
func openStorage(ctx context.Context, cfg *config.Config, log *slog.Logger) (reg *storage.Registry, close func(), err error) {
	d, err := openDriver(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	opts := storageOptions(cfg)
	close = func() {}
	shared, err := openSharedCache(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if shared != nil {
		opts.Shared, close = shared, func() { shared.Close() }
	}
	return storage.New(d, opts, log), close, nil
}

// openDriver opens the configured driver with the configured timeouts on
// every backend call.
func openDriver(ctx context.Context, cfg *config.Config) (driver.Driver, error) {
	name, params := cfg.Storage.Driver()
	d, err := driver.Open(ctx, name, params)
	if err != nil {
		return nil, placeDriverError(cfg, name, err)
	}
	t := cfg.Berth.Storage.Timeouts
	return driver.WithTimeouts(d, driver.Timeouts{
		Metadata: t.Metadata, Read: t.Read, Write: t.Write, Commit: t.Commit,
	}), nil
}

// applyStorageMiddleware puts the enabled storage middleware of the
// config over d, in order.
func applyStorageMiddleware(ctx context.Context, cfg *config.Config, d driver.Driver, log *slog.Logger) (driver.Driver, error) {
	return middleware.Apply(ctx, d, storageMiddleware(cfg), log)
}

// storageMiddleware is the config's enabled storage middleware, in order.
func storageMiddleware(cfg *config.Config) []middleware.Spec {
	var specs []middleware.Spec
	for i, mw := range cfg.Middleware.Storage {
		if mw.Disabled {
			continue
		}
		specs = append(specs, middleware.Spec{Key: fmt.Sprintf("middleware.storage[%d]", i), Name: mw.Name, Options: mw.Options})
	}
	return specs
}

// placeDriverError prefixes each bad driver key, or a driver this build
// left out, with where it was set (a file line or an environment
// variable), as config errors are.
func placeDriverError(cfg *config.Config, name string, err error) error {
	if errors.Is(err, driver.ErrUnknownDriver) {
		// The config knows every driver Berth has; this build left it out.
		msg := fmt.Sprintf("storage.%s: this build of Berth leaves out the %s driver (build tag %s%s); the release build has every driver", name, name, omitTagPrefix, name)
		if where := cfg.Where("storage." + name); where != "" {
			msg = where + ": " + msg
		}
		return errors.New(msg)
	}
	pes := driver.ParamErrors(err)
	if len(pes) == 0 {
		return err
	}
	lines := make([]string, len(pes))
	for i, pe := range pes {
		key := "storage." + name + "." + pe.Key
		lines[i] = key + ": " + pe.Msg
		if where := cfg.Where(key); where != "" {
			lines[i] = where + ": " + lines[i]
		} else if where := cfg.Where("storage." + name); where != "" {
			lines[i] = where + ": " + lines[i]
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

func storageOptions(cfg *config.Config) storage.Options {
	v := cfg.Validation
	opts := storage.Options{
		DeleteEnabled:       cfg.Storage.Delete.Enabled,
		BlobDescriptors:     cfg.Storage.Cache.BlobDescriptorSize,
		TagConcurrencyLimit: cfg.Storage.Tag.ConcurrencyLimit,
		UploadLease:         cfg.Berth.Storage.UploadLease,
		LeaseSkew:           cfg.Berth.Storage.LeaseSkew,
		ContentBytes:        cfg.Berth.Storage.Cache.ContentBytes,
		DistributionUploads: cfg.Berth.Storage.DistributionUploads,
		NoCatalogIndex:      !cfg.Berth.Storage.CatalogIndexOn(),
		Validation: storage.ManifestValidation{
			Disabled:       v.Disabled,
			URLsAllow:      v.Manifests.URLs.Allow,
			URLsDeny:       v.Manifests.URLs.Deny,
			IndexPlatforms: v.Manifests.Indexes.Platforms,
		},
	}
	for _, p := range v.Manifests.Indexes.PlatformList {
		opts.Validation.IndexPlatformList = append(opts.Validation.IndexPlatformList,
			storage.Platform{OS: p.OS, Architecture: p.Architecture})
	}
	return opts
}
