package config

import ()

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
