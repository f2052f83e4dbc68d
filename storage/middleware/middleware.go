// Package middleware holds the storage middleware of Distribution's
// `middleware.storage` config, by the same names: each changes where a
// blob GET is redirected (a fixed base URL, a signed CloudFront URL, the
// driver's URL rewritten). It knows drivers and redirect URLs, not blobs.
package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/berth-registry/berth/storage/driver"
)

// Spec is one configured middleware: a name and its options, and where
// the config set it ("middleware.storage[0]"), for errors.
type Spec struct {
	Key     string
	Name    string
	Options map[string]any
}

// builder makes a middleware's Redirector over next, the driver's own (or
// the previous middleware's), which is nil when there is none.
type builder func(ctx context.Context, d driver.Driver, next driver.Redirector, opts map[string]any, log *slog.Logger) (driver.Redirector, error)

// checker decodes and checks a middleware's options as its builder
// does, with no driver and no network: it may read files (a key), never
// fetch anything.
type checker func(opts map[string]any, log *slog.Logger) error

// builders are the storage middleware Berth has.
var builders = map[string]builder{
	"cloudfront": newCloudFront,
	"redirect":   newRedirect,
	"rewrite":    newRewrite,
}

// checkers check the options of each of builders, offline.
var checkers = map[string]checker{
	"cloudfront": func(opts map[string]any, log *slog.Logger) error {
		_, err := parseCloudFront(opts, log)
		return err
	},
	"redirect": func(opts map[string]any, _ *slog.Logger) error {
		_, err := parseRedirect(opts)
		return err
	},
	"rewrite": func(opts map[string]any, _ *slog.Logger) error {
		_, err := parseRewrite(opts)
		return err
	},
}

// Known returns the names of the storage middleware Berth has, sorted.
func Known() []string {
	names := make([]string, 0, len(builders))
	for n := range builders {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Apply puts each middleware of specs over d, in order, the first nearest
// the driver. An unknown name or a bad option is an error naming it;
// ctx bounds the background work a middleware keeps (CloudFront's AWS
// address ranges).
func Apply(ctx context.Context, d driver.Driver, specs []Spec, log *slog.Logger) (driver.Driver, error) {
	for _, s := range specs {
		b, ok := builders[s.Name]
		if !ok {
			return nil, fmt.Errorf("%s: unknown storage middleware %q (Berth has %s)", s.Key, s.Name, strings.Join(Known(), ", "))
		}
		rd, err := b(ctx, d, driver.RedirectorOf(d), s.Options, log.With("middleware", s.Name))
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", s.Key, s.Name, err)
		}
		d = driver.WithRedirector(d, rd)
	}
	return d, nil
}

// Check refuses, with the same errors as Apply, every spec Apply would
// refuse for its name or its options, without a driver and without the
// network (CloudFront's AWS address ranges are not fetched): `config
// check` calls it so that it refuses what serve refuses.
func Check(specs []Spec, log *slog.Logger) error {
	var errs []error
	for _, s := range specs {
		c, ok := checkers[s.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown storage middleware %q (Berth has %s)", s.Key, s.Name, strings.Join(Known(), ", ")))
			continue
		}
		if err := c(s.Options, log.With("middleware", s.Name)); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", s.Key, s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// decode decodes opts strictly into into, naming each bad key.
func decode(opts map[string]any, into any) error {
	err := driver.DecodeParams(opts, into)
	if pes := driver.ParamErrors(err); len(pes) > 0 {
		lines := make([]string, len(pes))
		for i, pe := range pes {
			lines[i] = "options." + pe.Error()
		}
		return fmt.Errorf("%s", strings.Join(lines, "; "))
	}
	return err
}
