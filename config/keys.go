package config

import "strings"

// Status says what Berth does with a configuration key.
type Status int

// The statuses a key may have. docs/configuration.md says the same per key.
const (
	// Same: the key takes effect, as in CNCF Distribution.
	Same Status = iota + 1
	// BerthOnly: the key takes effect; Distribution does not have it.
	BerthOnly
	// NoEffect: the key is accepted so that a Distribution configuration
	// loads, and ignored; serve and config check say so at start.
	NoEffect
)

func (s Status) String() string {
	switch s {
	case Same:
		return "same as Distribution"
	case BerthOnly:
		return "Berth only"
	case NoEffect:
		return "accepted, no effect"
	}
	return "unknown"
}

// keyStatus is the status of every key of the schema (schema.go says how
// paths are written). A NoEffect entry on a section covers every key
// below it. A test walks the Config structs and fails on a key missing
// here, so no key can be parsed and silently ignored: adding a key is one
// field and one line here.
//
// middleware.registry and middleware.repository name nothing Berth (or
// Distribution 3) has: a name there is refused, so their keys can only
// be present empty.
var keyStatus = map[string]Status{
	"version":                Same,
	"log.level":              Same,
	"log.formatter":          Same,
	"log.fields":             Same,
	"log.accesslog.disabled": Same,
	"log.reportcaller":       Same,
	"log.hooks":              NoEffect, // Distribution's mail hook: Berth sends no mail
	"storage.delete.enabled": Same,
	"storage.maintenance.uploadpurging.enabled":   Same,
	"storage.maintenance.uploadpurging.age":       Same,
	"storage.maintenance.uploadpurging.interval":  Same,
	"storage.maintenance.uploadpurging.dryrun":    Same,
	"storage.maintenance.readonly.enabled":        Same,
	"storage.redirect.disable":                    Same,
	"storage.cache.blobdescriptor":                Same,
	"storage.cache.blobdescriptorsize":            Same,
	"storage.cache.layerinfo":                     Same,
	"storage.tag.concurrencylimit":                Same,
	"auth.htpasswd.realm":                         Same,
	"auth.htpasswd.path":                          Same,
	"auth.token.realm":                            Same,
	"auth.token.service":                          Same,
	"auth.token.issuer":                           Same,
	"auth.token.rootcertbundle":                   Same,
	"auth.token.jwks":                             Same,
	"auth.token.autoredirect":                     Same,
	"auth.token.autoredirectpath":                 Same,
	"auth.token.signingalgorithms":                Same,
	"auth.silly.realm":                            Same,
	"auth.silly.service":                          Same,
	"middleware.registry[].name":                  NoEffect,
	"middleware.registry[].disabled":              NoEffect,
	"middleware.registry[].options":               NoEffect,
	"middleware.repository[].name":                NoEffect,
	"middleware.repository[].disabled":            NoEffect,
	"middleware.repository[].options":             NoEffect,
	"middleware.storage[].name":                   Same,
	"middleware.storage[].disabled":               Same,
	"middleware.storage[].options":                Same,
	"http.addr":                                   Same,
	"http.net":                                    Same,
	"http.prefix":                                 Same,
	"http.host":                                   Same,
	"http.secret":                                 Same,
	"http.relativeurls":                           Same,
	"http.draintimeout":                           Same,
	"http.headers":                                Same,
	"http.tls.certificate":                        Same,
	"http.tls.key":                                Same,
	"http.tls.clientcas":                          Same,
	"http.tls.clientauth":                         Same,
	"http.tls.minimumtls":                         Same,
	"http.tls.ciphersuites":                       Same,
	"http.tls.letsencrypt.cachefile":              Same,
	"http.tls.letsencrypt.email":                  Same,
	"http.tls.letsencrypt.hosts":                  Same,
	"http.tls.letsencrypt.directoryurl":           Same,
	"http.debug.addr":                             Same,
	"http.debug.prometheus.enabled":               Same,
	"http.debug.prometheus.path":                  Same,
	"http.http2.disabled":                         Same,
	"http.h2c.enabled":                            Same,
	"notifications.events.includereferences":      Same,
	"notifications.endpoints[].name":              Same,
	"notifications.endpoints[].disabled":          Same,
	"notifications.endpoints[].url":               Same,
	"notifications.endpoints[].headers":           Same,
	"notifications.endpoints[].timeout":           Same,
	"notifications.endpoints[].threshold":         Same,
	"notifications.endpoints[].backoff":           Same,
	"notifications.endpoints[].ignoredmediatypes": Same,
	"notifications.endpoints[].ignore.mediatypes": Same,
	"notifications.endpoints[].ignore.actions":    Same,
	"notifications.endpoints[].mediatype":         BerthOnly,
	"notifications.spool":                         BerthOnly,
	"notifications.spoolmaxbytes":                 BerthOnly,
	"redis.addr":                                  Same,
	"redis.addrs":                                 Same,
	"redis.clientname":                            Same,
	"redis.db":                                    Same,
	"redis.protocol":                              Same,
	"redis.username":                              Same,
	"redis.password":                              Same,
	"redis.sentinelusername":                      Same,
	"redis.sentinelpassword":                      Same,
	"redis.mastername":                            Same,
	"redis.maxretries":                            Same,
	"redis.minretrybackoff":                       Same,
	"redis.maxretrybackoff":                       Same,
	"redis.dialtimeout":                           Same,
	"redis.readtimeout":                           Same,
	"redis.writetimeout":                          Same,
	"redis.contexttimeoutenabled":                 Same,
	"redis.poolfifo":                              Same,
	"redis.poolsize":                              Same,
	"redis.pooltimeout":                           Same,
	"redis.minidleconns":                          Same,
	"redis.maxidleconns":                          Same,
	"redis.maxactiveconns":                        Same,
	"redis.connmaxidletime":                       Same,
	"redis.connmaxlifetime":                       Same,
	"redis.maxredirects":                          Same,
	"redis.readonly":                              Same,
	"redis.routebylatency":                        Same,
	"redis.routerandomly":                         Same,
	"redis.disableidentity":                       Same,
	"redis.identitysuffix":                        Same,
	"redis.unstableresp3":                         Same,
	"redis.pool.maxidle":                          Same,
	"redis.pool.maxactive":                        Same,
	"redis.pool.idletimeout":                      Same,
	"redis.tls.enabled":                           Same,
	"redis.tls.certificate":                       Same,
	"redis.tls.key":                               Same,
	"redis.tls.rootcas":                           Same,
	"redis.enabletls":                             Same, // Harbor's name for redis.tls.enabled, read as it
	"redis.sentinelmasterset":                     Same, // Harbor's name for redis.mastername, read as it
	"health.storagedriver.enabled":                Same,
	"health.storagedriver.interval":               Same,
	"health.storagedriver.threshold":              Same,
	"health.file[].file":                          Same,
	"health.file[].interval":                      Same,
	"health.file[].threshold":                     Same,
	"health.http[].uri":                           Same,
	"health.http[].headers":                       Same,
	"health.http[].statuscode":                    Same,
	"health.http[].timeout":                       Same,
	"health.http[].interval":                      Same,
	"health.http[].threshold":                     Same,
	"health.tcp[].addr":                           Same,
	"health.tcp[].timeout":                        Same,
	"health.tcp[].interval":                       Same,
	"health.tcp[].threshold":                      Same,
	"catalog.maxentries":                          Same,
	"tags.maxtags":                                Same,
	"proxy.remoteurl":                             Same,
	"proxy.username":                              Same,
	"proxy.password":                              Same,
	"proxy.exec.command":                          Same,
	"proxy.exec.lifetime":                         Same,
	"proxy.ttl":                                   Same,
	"proxy.cachewritetimeout":                     Same,
	"validation.enabled":                          Same,
	"validation.disabled":                         Same,
	"validation.manifests.urls.allow":             Same,
	"validation.manifests.urls.deny":              Same,
	"validation.manifests.indexes.platforms":      Same,
	"validation.manifests.indexes.platformlist[].architecture": Same,
	"validation.manifests.indexes.platformlist[].os":           Same,
	"policy.repository.classes":                                NoEffect,
	"berth.storage.gc.graceperiod":                             BerthOnly,
	"berth.proxy.freshness":                                    BerthOnly,
	"berth.proxy.timeout":                                      BerthOnly,
	"berth.mirrors[].prefix":                                   BerthOnly,
	"berth.mirrors[].remoteurl":                                BerthOnly,
	"berth.mirrors[].username":                                 BerthOnly,
	"berth.mirrors[].password":                                 BerthOnly,
	"berth.mirrors[].passwordfile":                             BerthOnly,
	"berth.mirrors[].exec.command":                             BerthOnly,
	"berth.mirrors[].exec.lifetime":                            BerthOnly,
	"berth.mirrors[].ttl":                                      BerthOnly,
	"berth.mirrors[].freshness":                                BerthOnly,
	"berth.mirrors[].timeout":                                  BerthOnly,
	"berth.storage.timeouts.metadata":                          BerthOnly,
	"berth.storage.timeouts.read":                              BerthOnly,
	"berth.storage.timeouts.write":                             BerthOnly,
	"berth.storage.timeouts.commit":                            BerthOnly,
	"berth.storage.uploadlease":                                BerthOnly,
	"berth.storage.distributionuploads":                        BerthOnly,
	"berth.storage.catalogindex":                               BerthOnly,
	"berth.storage.leaseskew":                                  BerthOnly,
	"berth.storage.cache.contentbytes":                         BerthOnly,
	"berth.http.bodyidletimeout":                               BerthOnly,
	"berth.http.trustedproxies":                                BerthOnly,
	"berth.auth.htpasswd.maxfailures":                          BerthOnly,
	"berth.auth.htpasswd.failurewindow":                        BerthOnly,
	"reporting":                                                NoEffect,
	"compatibility":                                            NoEffect,
}

// statusOf returns the status of the key at schema path p: its own entry,
// or a NoEffect section above it.
func statusOf(p string) (Status, bool) {
	if s, ok := keyStatus[p]; ok {
		return s, true
	}
	for {
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return 0, false
		}
		p = p[:i]
		if s, ok := keyStatus[p]; ok && s == NoEffect {
			return s, true
		}
	}
}
