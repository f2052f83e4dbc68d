package config

import (
	"slices"
	"strings"
)

// What Berth reads so that files written for other versions of
// Distribution, or for Harbor, load as they are: old places of keys and
// other projects' names for them.

// rawSection is a section kept undecoded until its place is known.
type rawSection struct {
	key   string
	value any
}

// legacyGC reads storage.gc, where Berth's gc settings were before the
// berth section: Distribution reads it as a second storage driver and
// refuses to start, so it is accepted with a warning to move it.
func (p *parser) legacyGC(cfg *Config) {
	p.gcKey = "berth.storage.gc"
	if p.oldGC == nil {
		return
	}
	if _, set := p.sources["berth.storage.gc"]; set {
		p.fail(p.oldGC.key, "set both here and in berth.storage.gc: keep berth.storage.gc only")
		return
	}
	p.warn("%s is deprecated: CNCF Distribution takes it for a second storage driver and refuses to start; move it to berth.storage.gc", p.oldGC.key)
	p.gcKey = p.oldGC.key
	p.decodeInto(p.oldGC.key, p.oldGC.value, &cfg.Berth.Storage.GC)
}

// middlewareNames are the middlewares CNCF Distribution 3 has, by
// injection point: it refuses to start with any other name, and so does
// Berth.
var middlewareNames = map[string][]string{
	"registry":   nil,
	"repository": nil,
	"storage":    {"cloudfront", "redirect", "rewrite"},
}

func (p *parser) checkMiddleware(m *Middlewares) {
	for _, point := range []struct {
		name string
		list []Middleware
	}{{"registry", m.Registry}, {"repository", m.Repository}, {"storage", m.Storage}} {
		for i, mw := range point.list {
			key := "middleware." + point.name + "[" + itoa(i) + "].name"
			known := middlewareNames[point.name]
			switch {
			case mw.Name == "":
				p.fail(key, "required")
			case !slices.Contains(known, mw.Name) && len(known) == 0:
				p.fail(key, "no %s middleware named %q: CNCF Distribution has none at this point and refuses to start too", point.name, mw.Name)
			case !slices.Contains(known, mw.Name):
				p.fail(key, "no %s middleware named %q (CNCF Distribution has %s and refuses any other name too)", point.name, mw.Name, strings.Join(known, ", "))
			}
		}
	}
}

// checkRedis maps Harbor's redis keys to their Distribution meaning.
func (p *parser) checkRedis(r *Redis) {
	if r.EnableTLS {
		r.TLS.Enabled = true
	}
	if r.SentinelMasterSet != "" {
		if r.MasterName != "" && r.MasterName != r.SentinelMasterSet {
			p.fail("redis.sentinelmasterset", "differs from redis.mastername: keep one (sentinelmasterset is Harbor's name for mastername)")
		}
		r.MasterName = r.SentinelMasterSet
	}
}
