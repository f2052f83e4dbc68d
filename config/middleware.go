package config

import (
	"slices"
	"strings"

	"github.com/berth-registry/berth/storage/middleware"
)

// checkMiddleware refuses a middleware name Berth does not have, listing
// the ones it has: a CDN named in the config and silently skipped would
// send every blob byte through the registry instead. Distribution has no
// registry or repository middleware built in, and neither has Berth.
func (p *parser) checkMiddleware(m *Middlewares) {
	known := middleware.Known()
	for _, point := range []struct {
		name  string
		list  []Middleware
		known []string
	}{
		{"registry", m.Registry, nil},
		{"repository", m.Repository, nil},
		{"storage", m.Storage, known},
	} {
		for i, mw := range point.list {
			key := "middleware." + point.name + "[" + itoa(i) + "].name"
			switch {
			case mw.Name == "":
				p.fail(key, "required")
			case len(point.known) == 0:
				p.fail(key, "unknown %s middleware %q: Berth has none (storage middleware: %s)", point.name, mw.Name, strings.Join(known, ", "))
			case !slices.Contains(point.known, mw.Name):
				p.fail(key, "unknown storage middleware %q (Berth has %s)", mw.Name, strings.Join(point.known, ", "))
			}
		}
	}
}
