package middleware

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"path"

	"github.com/berth-registry/berth/storage/driver"
)

// redirect sends every blob GET to baseurl joined with the blob's storage
// path, whatever the driver: a web server or CDN that serves the storage
// tree.
type redirect struct {
	scheme, host, base string
}

func newRedirect(_ context.Context, _ driver.Driver, _ driver.Redirector, opts map[string]any, _ *slog.Logger) (driver.Redirector, error) {
	return parseRedirect(opts)
}

// parseRedirect checks redirect's options and makes it: it needs
// neither the driver nor the network.
func parseRedirect(opts map[string]any) (*redirect, error) {
	var o struct {
		BaseURL string `yaml:"baseurl"`
	}
	if err := decode(opts, &o); err != nil {
		return nil, err
	}
	if o.BaseURL == "" {
		return nil, errors.New("options.baseurl: required, e.g. https://cdn.example.com/registry")
	}
	u, err := url.Parse(o.BaseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, errors.New("options.baseurl: expected an absolute URL with a scheme and a host, got " + o.BaseURL)
	}
	return &redirect{scheme: u.Scheme, host: u.Host, base: u.Path}, nil
}

func (r *redirect) RedirectURL(_ *http.Request, p string) (string, error) {
	if r.base != "" {
		p = path.Join(r.base, p)
	}
	return (&url.URL{Scheme: r.scheme, Host: r.host, Path: p}).String(), nil
}
