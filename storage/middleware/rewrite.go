package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-registry/berth/storage/driver"
)

// rewrite changes the scheme, the host or the start of the path of the
// URL the driver (or the middleware before) redirects to: a presigned
// Azure or S3 URL sent through a proxy or a private endpoint. A blob the
// driver would serve itself stays served by Berth.
type rewrite struct {
	next               driver.Redirector
	scheme, host, trim string
}

func newRewrite(_ context.Context, _ driver.Driver, next driver.Redirector, opts map[string]any, log *slog.Logger) (driver.Redirector, error) {
	rw, err := parseRewrite(opts)
	if err != nil {
		return nil, err
	}
	if next == nil {
		log.Warn("storage driver makes no redirect URLs: rewrite has nothing to rewrite")
	}
	rw.next = next
	return rw, nil
}

// parseRewrite checks rewrite's options, with no driver yet.
func parseRewrite(opts map[string]any) (*rewrite, error) {
	var o struct {
		Scheme         string `yaml:"scheme"`
		Host           string `yaml:"host"`
		TrimPathPrefix string `yaml:"trimpathprefix"`
	}
	if err := decode(opts, &o); err != nil {
		return nil, err
	}
	return &rewrite{scheme: o.Scheme, host: o.Host, trim: o.TrimPathPrefix}, nil
}

func (r *rewrite) RedirectURL(req *http.Request, p string) (string, error) {
	if r.next == nil {
		return "", nil
	}
	raw, err := r.next.RedirectURL(req, p)
	if err != nil || raw == "" {
		return raw, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if r.scheme != "" {
		u.Scheme = r.scheme
	}
	if r.host != "" {
		u.Host = r.host
	}
	if r.trim != "" {
		// On the escaped path, so that the rest keeps the encoding a
		// presigned URL's signature covers.
		ep := strings.TrimPrefix(u.EscapedPath(), r.trim)
		if u.Path, err = url.PathUnescape(ep); err != nil {
			return "", err
		}
		u.RawPath = ep
	}
	return u.String(), nil
}
