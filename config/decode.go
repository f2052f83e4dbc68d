package config

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// Drivers are the storage drivers Berth has; a storage section naming
// another is refused here rather than when the program opens it.
var Drivers = []string{"azure", "filesystem", "gcs", "inmemory", "s3", "swift"}

// storageShared are the keys of the storage section that are not drivers.
var storageShared = []string{"cache", "delete", "gc", "maintenance", "redirect", "tag"}

const defaultInterval = 10 * time.Second

// defaults is the configuration before the file is read: absent keys keep
// these values.
func defaults() *Config {
	return &Config{
		Log: Log{Level: "info", Formatter: "text"},
		Storage: Storage{Maintenance: Maintenance{UploadPurging: UploadPurging{
			Enabled: true, Age: 168 * time.Hour, Interval: 24 * time.Hour,
		}}},
		HTTP:    HTTP{Net: "tcp"},
		Catalog: Catalog{MaxEntries: 1000},
		Tags:    Tags{MaxTags: 1000},
		Berth: Berth{
			Storage: BerthStorage{GC: GC{GracePeriod: time.Hour}, UploadLease: DefaultUploadLease, LeaseSkew: DefaultLeaseSkew},
			HTTP:    BerthHTTP{BodyIdleTimeout: DefaultBodyIdleTimeout},
			Auth:    BerthAuth{Htpasswd: BerthHtpasswd{MaxFailures: 10, FailureWindow: time.Minute}},
		},
	}
}

func (p *parser) decode(root map[string]any) *Config {
	cfg := defaults()
	cfg.sources = p.sources

	if _, v, ok := take(root, "version"); !ok || v == nil {
		p.fail("version", "required; Berth reads version 0.1")
	} else if s := describeVersion(v); s != "0.1" {
		p.fail("version", "unsupported version %s; Berth reads version 0.1", s)
	} else {
		cfg.Version = "0.1"
	}
	var oldLevel string
	if _, v, ok := take(root, "loglevel"); ok {
		p.warn("loglevel is deprecated; use log.level")
		if s, isString := v.(string); isString {
			oldLevel = s
		} else if v != nil {
			p.fail("loglevel", "expected a string, got %s", describeValue(v))
		}
	}
	k, storage, ok := take(root, "storage")
	if !ok || storage == nil {
		p.fail("storage", "required: configure exactly one storage driver (%s)", strings.Join(Drivers, ", "))
	} else {
		p.storage(k, storage, &cfg.Storage)
	}
	if k, auth, ok := take(root, "auth"); ok {
		p.auth(k, auth, &cfg.Auth)
	}
	p.decodeInto("", root, cfg)
	p.legacyGC(cfg)

	if oldLevel != "" {
		if _, _, set := lookup(mapOf(root["log"]), "level"); !set {
			cfg.Log.Level = oldLevel
		}
	}
	p.check(cfg)
	p.noEffectWarnings()
	cfg.noEffect = p.noEffect
	cfg.Warnings = p.warnings
	return cfg
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func describeVersion(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if f, ok := v.(float64); ok && f == 0.1 {
		return "0.1"
	}
	return describeValue(v)
}

// storage splits the storage section into the shared keys, decoded here,
// and the one driver section, kept raw for the driver to decode.
func (p *parser) storage(key string, section any, s *Storage) {
	m, ok := section.(map[string]any)
	if !ok {
		p.fail(key, "expected a map or a driver name, got %s", describeValue(section))
		return
	}
	shared := map[string]any{}
	var drivers []string
	for _, k := range sortedKeys(m) {
		if slices.Contains(storageShared, strings.ToLower(k)) {
			shared[k] = m[k]
			continue
		}
		drivers = append(drivers, k)
	}
	if k, v, ok := take(shared, "gc"); ok {
		p.oldGC = &rawSection{key: join(key, k), value: v}
	}
	p.decodeInto(key, shared, s)
	switch len(drivers) {
	case 0:
		p.fail(key, "no storage driver configured: add one of %s", strings.Join(Drivers, ", "))
		return
	case 1:
	default:
		p.fail(key, "more than one storage driver configured (%s): keep exactly one (REGISTRY_STORAGE=<name> switches drivers from the environment)", strings.Join(drivers, ", "))
		return
	}
	name := strings.ToLower(drivers[0])
	path := join(key, drivers[0])
	if !slices.Contains(Drivers, name) {
		p.fail(path, "unknown storage driver (Berth has %s)", strings.Join(Drivers, ", "))
		return
	}
	params := driver.Params{}
	switch v := m[drivers[0]].(type) {
	case nil:
	case map[string]any:
		params = v
	default:
		p.fail(path, "expected a map of driver parameters, got %s", describeValue(v))
		return
	}
	s.driver, s.params = name, params
}

func (p *parser) auth(key string, section any, a *Auth) {
	m, ok := section.(map[string]any)
	if !ok {
		if section != nil {
			p.fail(key, "expected a map or an auth type, got %s", describeValue(section))
		}
		return
	}
	if len(m) > 1 {
		p.fail(key, "more than one auth type configured (%s): keep at most one", strings.Join(sortedKeys(m), ", "))
		return
	}
	for k, v := range m {
		path := join(key, k)
		if v == nil {
			v = map[string]any{}
		}
		switch strings.ToLower(k) {
		case "htpasswd":
			a.Htpasswd = new(Htpasswd)
			p.decodeInto(path, v, a.Htpasswd)
			p.required(path, map[string]string{"realm": a.Htpasswd.Realm, "path": a.Htpasswd.Path})
		case "token":
			a.Token = new(Token)
			p.decodeInto(path, v, a.Token)
			t := a.Token
			p.required(path, map[string]string{"realm": t.Realm, "service": t.Service, "issuer": t.Issuer})
			if t.RootCertBundle == "" && t.JWKS == "" {
				p.fail(join(path, "rootcertbundle"), "required unless jwks is set")
			}
		case "silly":
			a.Silly = new(Silly)
			p.decodeInto(path, v, a.Silly)
			p.required(path, map[string]string{"realm": a.Silly.Realm, "service": a.Silly.Service})
		case "none":
			a.None = new(None)
			p.decodeInto(path, v, a.None)
		default:
			p.fail(path, "unknown auth type (accepted: htpasswd, none, silly, token)")
		}
	}
}

// required reports each key whose value is empty.
func (p *parser) required(prefix string, values map[string]string) {
	for _, k := range sortedKeys(anyMap(values)) {
		if values[k] == "" {
			p.fail(join(prefix, k), "required")
		}
	}
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

var (
	logLevels     = []string{"error", "warn", "info", "debug"}
	minimumTLS    = []string{"tls1.0", "tls1.1", "tls1.2", "tls1.3"}
	clientAuths   = []string{"request-client-cert", "require-any-client-cert", "verify-client-cert-if-given", "require-and-verify-client-cert"}
	httpNetworks  = []string{"tcp", "tcp4", "tcp6", "unix"}
	platformModes = []string{"all", "none", "list"}
	blobCaches    = []string{"inmemory", "redis"}
)

// check validates values and fills defaults that depend on other keys.
func (p *parser) check(c *Config) {
	c.Log.Level = strings.ToLower(c.Log.Level)
	if !slices.Contains(logLevels, c.Log.Level) {
		p.fail("log.level", "invalid level %q (accepted: %s)", c.Log.Level, strings.Join(logLevels, ", "))
	}
	switch c.Log.Formatter = strings.ToLower(c.Log.Formatter); c.Log.Formatter {
	case "text", "json":
	case "logstash":
		p.warn("log.formatter logstash is written as json by Berth")
		c.Log.Formatter = "json"
	default:
		p.fail("log.formatter", "invalid formatter %q (accepted: text, json)", c.Log.Formatter)
	}

	st := &c.Storage
	if st.Cache.LayerInfo != "" {
		// Distribution's old name; no effect in Berth, which says so.
		if st.Cache.BlobDescriptor == "" {
			st.Cache.BlobDescriptor = st.Cache.LayerInfo
		}
		st.Cache.LayerInfo = ""
	}
	if bd := st.Cache.BlobDescriptor; bd != "" && !slices.Contains(blobCaches, bd) {
		p.fail("storage.cache.blobdescriptor", "invalid cache %q (accepted: inmemory, redis)", bd)
	}
	if st.Cache.BlobDescriptor == "redis" && len(c.Redis.Addresses()) == 0 {
		p.fail("storage.cache.blobdescriptor", "redis needs redis.addrs")
	}
	if st.Cache.BlobDescriptor == "inmemory" && st.Cache.BlobDescriptorSize == 0 {
		st.Cache.BlobDescriptorSize = 10000
	}
	p.notNegative("storage.tag.concurrencylimit", st.Tag.ConcurrencyLimit)
	if c.Berth.Storage.GC.GracePeriod < 0 {
		p.fail(p.gcKey+".graceperiod", "must not be negative")
	}
	if up := st.Maintenance.UploadPurging; up.Enabled && (up.Age <= 0 || up.Interval <= 0) {
		p.fail("storage.maintenance.uploadpurging", "age and interval must be positive when upload purging is enabled")
	}

	p.checkHTTP(&c.HTTP)
	p.checkBerthHTTP(&c.Berth.HTTP)
	p.checkBerthTimeouts(&c.Berth.Storage.Timeouts)
	p.checkBerthStorage(&c.Berth.Storage)

	p.checkNotifications(&c.Notifications, &c.Storage)

	h := &c.Health
	if h.StorageDriver.Interval == 0 {
		h.StorageDriver.Interval = defaultInterval
	}
	for i := range h.File {
		if h.File[i].Interval == 0 {
			h.File[i].Interval = defaultInterval
		}
		p.required("health.file["+itoa(i)+"]", map[string]string{"file": h.File[i].File})
	}
	for i := range h.HTTP {
		if h.HTTP[i].Interval == 0 {
			h.HTTP[i].Interval = defaultInterval
		}
		if h.HTTP[i].StatusCode == 0 {
			h.HTTP[i].StatusCode = 200
		}
		p.required("health.http["+itoa(i)+"]", map[string]string{"uri": h.HTTP[i].URI})
	}
	for i := range h.TCP {
		if h.TCP[i].Interval == 0 {
			h.TCP[i].Interval = defaultInterval
		}
		p.required("health.tcp["+itoa(i)+"]", map[string]string{"addr": h.TCP[i].Addr})
	}

	if c.Catalog.MaxEntries <= 0 {
		c.Catalog.MaxEntries = 1000
	}
	p.notNegative("tags.maxtags", c.Tags.MaxTags)
	if c.Tags.MaxTags == 0 {
		c.Tags.MaxTags = 1000
	}

	bh := c.Berth.Auth.Htpasswd
	p.notNegative("berth.auth.htpasswd.maxfailures", bh.MaxFailures)
	if bh.MaxFailures > 0 && bh.FailureWindow <= 0 {
		p.fail("berth.auth.htpasswd.failurewindow", "must be positive while maxfailures is not 0")
	}

	px := &c.Proxy
	if px.RemoteURL == "" && (px.Username != "" || px.Password != "" || px.Exec != nil || px.TTL != nil) {
		p.fail("proxy.remoteurl", "required when the proxy section is set")
	}
	if px.RemoteURL != "" {
		p.checkURL("proxy.remoteurl", px.RemoteURL)
		if px.TTL == nil {
			ttl := 168 * time.Hour
			px.TTL = &ttl
		}
	}
	if px.Exec != nil && px.Exec.Command == "" {
		p.fail("proxy.exec.command", "required")
	}
	p.checkMirrors(c)

	p.checkRedis(&c.Redis)

	v := &c.Validation
	if _, set := p.sources["validation.enabled"]; set {
		p.warn("validation.enabled is deprecated; use validation.disabled (enabled: true turns the checks on whatever disabled says, as in CNCF Distribution)")
	}
	if v.Enabled {
		// Distribution reads the deprecated enabled: true as "validate",
		// whatever disabled says.
		v.Disabled = false
	}
	for _, list := range []struct {
		key string
		res []string
	}{{"validation.manifests.urls.allow", v.Manifests.URLs.Allow}, {"validation.manifests.urls.deny", v.Manifests.URLs.Deny}} {
		for i, re := range list.res {
			if _, err := regexp.Compile(re); err != nil {
				p.fail(list.key+"["+itoa(i)+"]", "invalid regular expression: %v", err)
			}
		}
	}
	ix := &v.Manifests.Indexes
	ix.Platforms = strings.ToLower(ix.Platforms)
	if ix.Platforms == "" {
		ix.Platforms = "all"
	}
	if !slices.Contains(platformModes, ix.Platforms) {
		p.fail("validation.manifests.indexes.platforms", "invalid value %q (accepted: all, none, list)", ix.Platforms)
	}

	p.checkMiddleware(&c.Middleware)
}

func (p *parser) checkBerthHTTP(h *BerthHTTP) {
	if h.BodyIdleTimeout < 0 {
		p.fail("berth.http.bodyidletimeout", "must not be negative (0 turns the idle timeout off)")
	}
	for i, s := range h.TrustedProxies {
		if _, err := parseProxy(s); err != nil {
			p.fail("berth.http.trustedproxies["+itoa(i)+"]", "expected a CIDR such as 10.0.0.0/8 or an address, got %q", s)
		}
	}
}

func (p *parser) checkBerthStorage(s *BerthStorage) {
	// A term under a second would be spent renewing it.
	if s.UploadLease < time.Second {
		p.fail("berth.storage.uploadlease", "must be at least 1s, got %s", s.UploadLease)
	}
	if s.LeaseSkew <= 0 || s.LeaseSkew > maxLeaseSkew {
		p.fail("berth.storage.leaseskew", "must be positive and at most %s, got %s", maxLeaseSkew, s.LeaseSkew)
	}
	if s.Cache.ContentBytes < 0 {
		p.fail("berth.storage.cache.contentbytes", "must not be negative (0 keeps the default), got %d", s.Cache.ContentBytes)
	}
}

func (p *parser) checkHTTP(h *HTTP) {
	h.Net = strings.ToLower(h.Net)
	if h.Net == "" {
		h.Net = "tcp"
	}
	if !slices.Contains(httpNetworks, h.Net) {
		p.fail("http.net", "invalid network %q (accepted: %s)", h.Net, strings.Join(httpNetworks, ", "))
	}
	if h.Host != "" {
		p.checkURL("http.host", h.Host)
	}
	if h.DrainTimeout < 0 {
		p.fail("http.draintimeout", "must not be negative")
	}
	t := &h.TLS
	if (t.Certificate == "") != (t.Key == "") {
		if t.Certificate == "" {
			p.fail("http.tls.certificate", "required when http.tls.key is set")
		} else {
			p.fail("http.tls.key", "required when http.tls.certificate is set")
		}
	}
	le := t.LetsEncrypt
	if t.Certificate != "" && le.CacheFile != "" {
		// Distribution refuses this pair too: which would it serve?
		p.fail("http.tls.letsencrypt", "set either http.tls.certificate or http.tls.letsencrypt, not both")
	}
	if le.Email != "" || len(le.Hosts) > 0 || le.DirectoryURL != "" {
		p.required("http.tls.letsencrypt", map[string]string{"cachefile": le.CacheFile, "email": le.Email})
	}
	t.MinimumTLS = strings.ToLower(t.MinimumTLS)
	if t.MinimumTLS == "" {
		t.MinimumTLS = "tls1.2"
	}
	if !slices.Contains(minimumTLS, t.MinimumTLS) {
		p.fail("http.tls.minimumtls", "invalid version %q (accepted: %s)", t.MinimumTLS, strings.Join(minimumTLS, ", "))
	}
	if t.ClientAuth != "" && !slices.Contains(clientAuths, t.ClientAuth) {
		p.fail("http.tls.clientauth", "invalid mode %q (accepted: %s)", t.ClientAuth, strings.Join(clientAuths, ", "))
	}
	if t.ClientAuth == "" && len(t.ClientCAs) > 0 {
		t.ClientAuth = "require-and-verify-client-cert"
	}
	known := map[string]bool{}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		known[cs.Name] = true
	}
	for i, name := range t.CipherSuites {
		if !known[name] {
			p.fail("http.tls.ciphersuites["+itoa(i)+"]", "unknown cipher suite %q", name)
		}
	}
	if h.H2C.Enabled && t.Certificate != "" || h.H2C.Enabled && le.CacheFile != "" {
		p.warn("http.h2c.enabled has no effect with http.tls: HTTP/2 is negotiated over TLS (see http.http2.disabled)")
	}
	if h.Debug.Prometheus.Path == "" {
		h.Debug.Prometheus.Path = "/metrics"
	}
}

// Media types of the notification envelope an endpoint may be sent.
const (
	eventsV2 = "application/vnd.docker.distribution.events.v2+json"
	eventsV1 = "application/vnd.docker.distribution.events.v1+json"
)

func (p *parser) checkNotifications(n *Notifications, st *Storage) {
	names := map[string]bool{}
	for i := range n.Endpoints {
		e := &n.Endpoints[i]
		path := "notifications.endpoints[" + itoa(i) + "]"
		p.required(path, map[string]string{"name": e.Name, "url": e.URL})
		p.checkURL(join(path, "url"), e.URL)
		p.notNegative(join(path, "threshold"), e.Threshold)
		if e.Timeout < 0 {
			p.fail(join(path, "timeout"), "must not be negative")
		}
		if e.Backoff < 0 {
			p.fail(join(path, "backoff"), "must not be negative")
		}
		if e.Name != "" && names[e.Name] {
			p.fail(join(path, "name"), "%q names another endpoint too; each endpoint has its own spool, named after it", e.Name)
		}
		names[e.Name] = true
		if e.MediaType == "" {
			e.MediaType = eventsV2
		}
		if e.MediaType != eventsV2 && e.MediaType != eventsV1 {
			p.fail(join(path, "mediatype"), "invalid media type %q (accepted: %s, %s)", e.MediaType, eventsV2, eventsV1)
		}
	}
	if n.SpoolMaxBytes < 0 {
		p.fail("notifications.spoolmaxbytes", "must not be negative, got %d", n.SpoolMaxBytes)
	}
	if len(n.Endpoints) == 0 {
		return // nothing to spool: keep the printed config free of defaults no one uses
	}
	if n.SpoolMaxBytes == 0 {
		n.SpoolMaxBytes = 256 << 20
	}
	if n.Spool == "" {
		n.Spool = defaultSpool(st)
	}
}

// defaultSpool keeps the notification spool beside the registry's data
// when that is on local disk; with an object store it needs a local
// directory of its own.
func defaultSpool(st *Storage) string {
	name, params := st.Driver()
	if name != "filesystem" {
		return "/var/lib/berth/notifications"
	}
	root := "/var/lib/registry"
	if _, v, ok := lookup(params, "rootdirectory"); ok {
		if s, isString := v.(string); isString && s != "" {
			root = s
		}
	}
	return filepath.Join(root, "berth", "notifications")
}

// checkMirrors checks berth.mirrors and berth.proxy: a prefix and a URL
// for each mirror, one mirror per prefix, one way of giving a password.
func (p *parser) checkMirrors(c *Config) {
	b := &c.Berth
	if b.Proxy.Freshness != nil && *b.Proxy.Freshness < 0 {
		p.fail("berth.proxy.freshness", "must not be negative")
	}
	if b.Proxy.Timeout < 0 {
		p.fail("berth.proxy.timeout", "must not be negative")
	}
	seen := map[string]bool{}
	for i := range b.Mirrors {
		m := &b.Mirrors[i]
		key := fmt.Sprintf("berth.mirrors[%d]", i)
		m.Prefix = strings.Trim(m.Prefix, "/")
		switch {
		case m.Prefix == "":
			p.fail(key+".prefix", "required: the repository prefix this upstream serves (docker.io); the proxy section mirrors every repository")
		case !validPrefix(m.Prefix):
			p.fail(key+".prefix", "%q is not a repository name prefix (lower-case letters, digits, '.', '_', '-', '/')", m.Prefix)
		case seen[m.Prefix]:
			p.fail(key+".prefix", "%q is served by an earlier mirror", m.Prefix)
		}
		seen[m.Prefix] = true
		if m.RemoteURL == "" {
			p.fail(key+".remoteurl", "required")
		} else {
			p.checkURL(key+".remoteurl", m.RemoteURL)
		}
		if m.Password != "" && m.PasswordFile != "" {
			p.fail(key+".passwordfile", "set password or passwordfile, not both")
		}
		if m.Exec != nil && m.Exec.Command == "" {
			p.fail(key+".exec.command", "required")
		}
		if m.TTL == nil {
			ttl := 168 * time.Hour
			m.TTL = &ttl
		} else if *m.TTL < 0 {
			p.fail(key+".ttl", "must not be negative")
		}
		if m.Freshness != nil && *m.Freshness < 0 {
			p.fail(key+".freshness", "must not be negative")
		}
		if m.Timeout < 0 {
			p.fail(key+".timeout", "must not be negative")
		}
	}
	if len(b.Mirrors) > 0 && c.Proxy.RemoteURL != "" {
		p.fail("berth.mirrors", "the proxy section mirrors every repository; use berth.mirrors or proxy, not both")
	}
}

// validPrefix is the repository-name grammar's components joined by '/'.
func validPrefix(s string) bool {
	for comp := range strings.SplitSeq(s, "/") {
		if comp == "" || !(comp[0] >= 'a' && comp[0] <= 'z' || comp[0] >= '0' && comp[0] <= '9') {
			return false
		}
		for _, r := range comp {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return false
			}
		}
	}
	return true
}

func (p *parser) checkURL(key, raw string) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		p.fail(key, "expected an absolute URL such as https://example.com, got %q", RedactURL(raw))
	}
}

func (p *parser) notNegative(key string, n int) {
	if n < 0 {
		p.fail(key, "must not be negative, got %d", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
