// Package config reads Berth's configuration: the CNCF Distribution schema
// (version 0.1) from one YAML file, overridden by REGISTRY_* environment
// variables, decoded strictly. It knows the shape of every section but not
// what a storage driver accepts: each driver decodes its own section.
package config

import (
	"net/netip"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// Config is a whole configuration, with defaults applied.
type Config struct {
	Version       string        `yaml:"version"`
	Log           Log           `yaml:"log"`
	Storage       Storage       `yaml:"storage"`
	Auth          Auth          `yaml:"auth,omitempty"`
	Middleware    Middlewares   `yaml:"middleware,omitempty"`
	HTTP          HTTP          `yaml:"http"`
	Notifications Notifications `yaml:"notifications,omitempty"`
	Redis         Redis         `yaml:"redis,omitempty"`
	Health        Health        `yaml:"health,omitempty"`
	Catalog       Catalog       `yaml:"catalog,omitempty"`
	Tags          Tags          `yaml:"tags,omitempty"`
	Proxy         Proxy         `yaml:"proxy,omitempty"`
	Validation    Validation    `yaml:"validation,omitempty"`
	Policy        Policy        `yaml:"policy,omitempty"`
	// Berth holds the keys Distribution does not have, in a top-level
	// section Distribution ignores.
	Berth Berth `yaml:"berth,omitempty"`

	// Reporting (bugsnag, newrelic) and Compatibility (schema1) are
	// registry:2 sections that Distribution 3 ignores; so does Berth.
	Reporting     map[string]any `yaml:"reporting,omitempty"`
	Compatibility map[string]any `yaml:"compatibility,omitempty"`

	// Warnings are things a program should log at start: deprecated keys,
	// environment variables that match no key.
	Warnings []string `yaml:"-"`

	// noEffect are the present keys whose status is NoEffect.
	noEffect []string

	// sources maps a key path to where it was set ("config.yml:12" or
	// "REGISTRY_HTTP_ADDR"), for Where.
	sources map[string]string
}

// Log configures logging.
type Log struct {
	Level        string         `yaml:"level"`     // error, warn, info (default), debug
	Formatter    string         `yaml:"formatter"` // text (default) or json
	Fields       map[string]any `yaml:"fields,omitempty"`
	AccessLog    AccessLog      `yaml:"accesslog,omitempty"`
	ReportCaller bool           `yaml:"reportcaller,omitempty"`
	Hooks        []LogHook      `yaml:"hooks,omitempty"`
}

// AccessLog configures the per-request log.
type AccessLog struct {
	Disabled bool `yaml:"disabled"`
}

// LogHook is Distribution's mail hook; Berth reads it so such configs load.
type LogHook struct {
	Disabled bool        `yaml:"disabled,omitempty"`
	Type     string      `yaml:"type,omitempty"`
	Levels   []string    `yaml:"levels,omitempty"`
	Options  MailOptions `yaml:"options,omitempty"`
}

// MailOptions are a mail hook's settings.
type MailOptions struct {
	SMTP SMTP     `yaml:"smtp,omitempty"`
	From string   `yaml:"from,omitempty"`
	To   []string `yaml:"to,omitempty"`
}

// SMTP is a mail server.
type SMTP struct {
	Addr     string `yaml:"addr,omitempty"`
	Username string `yaml:"username,omitempty"`
	Password string `yaml:"password,omitempty"`
	Insecure bool   `yaml:"insecure,omitempty"`
}

// Storage selects one storage driver and the settings every driver shares.
type Storage struct {
	Delete      Delete      `yaml:"delete"`
	Maintenance Maintenance `yaml:"maintenance"`
	Redirect    Redirect    `yaml:"redirect,omitempty"`
	Cache       Cache       `yaml:"cache,omitempty"`
	Tag         Tag         `yaml:"tag,omitempty"`

	driver string
	params driver.Params
}

// Driver returns the selected driver's name and its section, undecoded: the
// driver decodes it strictly (driver.DecodeParams). The section is never nil.
func (s Storage) Driver() (name string, params driver.Params) {
	if s.params == nil {
		return s.driver, driver.Params{}
	}
	return s.driver, s.params
}

// Delete allows deleting manifests and blobs by digest.
type Delete struct {
	Enabled bool `yaml:"enabled"`
}

// Maintenance configures background upkeep.
type Maintenance struct {
	UploadPurging UploadPurging `yaml:"uploadpurging"`
	ReadOnly      ReadOnly      `yaml:"readonly,omitempty"`
}

// UploadPurging removes abandoned uploads older than Age every Interval.
type UploadPurging struct {
	Enabled  bool          `yaml:"enabled"`  // default true
	Age      time.Duration `yaml:"age"`      // default 168h
	Interval time.Duration `yaml:"interval"` // default 24h
	DryRun   bool          `yaml:"dryrun"`
}

// GC configures `berth garbage-collect` (berth.storage.gc; storage.gc
// before).
type GC struct {
	// GracePeriod is how young a blob must be for an --online collection to
	// keep it unreferenced: an upload or push in progress may be about to
	// link it. Default 1h.
	GracePeriod time.Duration `yaml:"graceperiod"`
}

// ReadOnly refuses every write.
type ReadOnly struct {
	Enabled bool `yaml:"enabled"`
}

// Redirect controls redirecting blob reads to the backend.
type Redirect struct {
	Disable bool `yaml:"disable"`
}

// Cache configures the blob descriptor cache.
type Cache struct {
	BlobDescriptor     string `yaml:"blobdescriptor,omitempty"`     // "", inmemory or redis
	BlobDescriptorSize int    `yaml:"blobdescriptorsize,omitempty"` // default 10000 (inmemory)
	// LayerInfo is the old name of BlobDescriptor; it is copied there.
	LayerInfo string `yaml:"layerinfo,omitempty"`
}

// Tag tunes tag lookups.
type Tag struct {
	ConcurrencyLimit int `yaml:"concurrencylimit,omitempty"` // 0: GOMAXPROCS
}

// Auth holds at most one access controller; Type says which.
type Auth struct {
	Htpasswd *Htpasswd `yaml:"htpasswd,omitempty"`
	Token    *Token    `yaml:"token,omitempty"`
	Silly    *Silly    `yaml:"silly,omitempty"`
	None     *None     `yaml:"none,omitempty"`
}

// Type is "htpasswd", "token", "silly", "none", or "" when no auth is set.
func (a Auth) Type() string {
	switch {
	case a.Htpasswd != nil:
		return "htpasswd"
	case a.Token != nil:
		return "token"
	case a.Silly != nil:
		return "silly"
	case a.None != nil:
		return "none"
	}
	return ""
}

// Htpasswd is basic auth from an htpasswd file of bcrypt hashes.
type Htpasswd struct {
	Realm string `yaml:"realm"`
	Path  string `yaml:"path"`
}

// Token is bearer-token (JWT) auth.
type Token struct {
	Realm             string   `yaml:"realm"`
	Service           string   `yaml:"service"`
	Issuer            string   `yaml:"issuer"`
	RootCertBundle    string   `yaml:"rootcertbundle,omitempty"`
	JWKS              string   `yaml:"jwks,omitempty"`
	AutoRedirect      bool     `yaml:"autoredirect,omitempty"`
	AutoRedirectPath  string   `yaml:"autoredirectpath,omitempty"`
	SigningAlgorithms []string `yaml:"signingalgorithms,omitempty"`
}

// Silly accepts any Authorization header; for development only.
type Silly struct {
	Realm   string `yaml:"realm"`
	Service string `yaml:"service"`
}

// None is explicit open access.
type None struct{}

// Middlewares are Distribution's named middlewares by injection point.
type Middlewares struct {
	Registry   []Middleware `yaml:"registry,omitempty"`
	Repository []Middleware `yaml:"repository,omitempty"`
	Storage    []Middleware `yaml:"storage,omitempty"`
}

// Middleware is one named middleware with free-form options.
type Middleware struct {
	Name     string         `yaml:"name"`
	Disabled bool           `yaml:"disabled,omitempty"`
	Options  map[string]any `yaml:"options,omitempty"`
}

// HTTP configures the registry's listener.
type HTTP struct {
	Addr         string              `yaml:"addr"`
	Net          string              `yaml:"net"` // tcp (default), tcp4, tcp6 or unix
	Prefix       string              `yaml:"prefix,omitempty"`
	Host         string              `yaml:"host,omitempty"`
	Secret       string              `yaml:"secret,omitempty"`
	RelativeURLs bool                `yaml:"relativeurls,omitempty"`
	DrainTimeout time.Duration       `yaml:"draintimeout,omitempty"`
	Headers      map[string][]string `yaml:"headers,omitempty"`
	TLS          TLS                 `yaml:"tls,omitempty"`
	Debug        Debug               `yaml:"debug,omitempty"`
	HTTP2        HTTP2               `yaml:"http2,omitempty"`
	H2C          H2C                 `yaml:"h2c,omitempty"`
}

// Proxies returns TrustedProxies as prefixes; a bare address is a /32 or
// /128. Entries that do not parse are left out (check refuses them).
func (h BerthHTTP) Proxies() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range h.TrustedProxies {
		if p, err := parseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parseProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// TLS configures serving HTTPS.
type TLS struct {
	Certificate  string      `yaml:"certificate,omitempty"`
	Key          string      `yaml:"key,omitempty"`
	ClientCAs    []string    `yaml:"clientcas,omitempty"`
	ClientAuth   string      `yaml:"clientauth,omitempty"` // default require-and-verify-client-cert
	MinimumTLS   string      `yaml:"minimumtls,omitempty"` // tls1.0 … tls1.3, default tls1.2
	CipherSuites []string    `yaml:"ciphersuites,omitempty"`
	LetsEncrypt  LetsEncrypt `yaml:"letsencrypt,omitempty"`
}

// Enabled reports whether HTTPS is configured (files or Let's Encrypt).
func (t TLS) Enabled() bool { return t.Certificate != "" || t.LetsEncrypt.CacheFile != "" }

// LetsEncrypt obtains certificates with ACME.
type LetsEncrypt struct {
	CacheFile    string   `yaml:"cachefile,omitempty"`
	Email        string   `yaml:"email,omitempty"`
	Hosts        []string `yaml:"hosts,omitempty"`
	DirectoryURL string   `yaml:"directoryurl,omitempty"`
}

// Debug configures the debug listener (health, metrics, pprof).
type Debug struct {
	Addr       string     `yaml:"addr,omitempty"`
	Prometheus Prometheus `yaml:"prometheus,omitempty"`
}

// Prometheus exposes metrics on the debug listener.
type Prometheus struct {
	Enabled bool   `yaml:"enabled,omitempty"`
	Path    string `yaml:"path,omitempty"` // default /metrics
}

// HTTP2 controls HTTP/2 over TLS.
type HTTP2 struct {
	Disabled bool `yaml:"disabled,omitempty"`
}

// H2C controls HTTP/2 without TLS.
type H2C struct {
	Enabled bool `yaml:"enabled,omitempty"`
}

// Notifications configures webhook endpoints.
type Notifications struct {
	Events    Events     `yaml:"events,omitempty"`
	Endpoints []Endpoint `yaml:"endpoints,omitempty"`
	// Spool is the local directory where events wait until their endpoint
	// accepts them, one subdirectory per endpoint (Berth only). Default:
	// berth/notifications under the filesystem driver's rootdirectory, or
	// /var/lib/berth/notifications with any other driver.
	Spool string `yaml:"spool,omitempty"`
	// SpoolMaxBytes caps each endpoint's spool; past it the oldest events
	// are dropped (Berth only). Default 256 MiB.
	SpoolMaxBytes int64 `yaml:"spoolmaxbytes,omitempty"`
}

// Events shapes the events sent.
type Events struct {
	IncludeReferences bool `yaml:"includereferences,omitempty"`
}

// Endpoint is one webhook.
type Endpoint struct {
	Name              string              `yaml:"name"`
	Disabled          bool                `yaml:"disabled,omitempty"`
	URL               string              `yaml:"url"`
	Headers           map[string][]string `yaml:"headers,omitempty"`
	Timeout           time.Duration       `yaml:"timeout,omitempty"`
	Threshold         int                 `yaml:"threshold,omitempty"`
	Backoff           time.Duration       `yaml:"backoff,omitempty"`
	IgnoredMediaTypes []string            `yaml:"ignoredmediatypes,omitempty"`
	Ignore            Ignore              `yaml:"ignore,omitempty"`
	// MediaType is the Content-Type of the requests: Distribution 3's
	// events.v2+json (the default) or registry:2's events.v1+json (Berth
	// only).
	MediaType string `yaml:"mediatype,omitempty"`
}

// Ignore filters events out of an endpoint.
type Ignore struct {
	MediaTypes []string `yaml:"mediatypes,omitempty"`
	Actions    []string `yaml:"actions,omitempty"`
}

// Redis is the shared cache. It takes Distribution 3's keys (go-redis
// universal options) and Distribution 2's (addr, pool, tls.enabled).
type Redis struct {
	Addr                  string        `yaml:"addr,omitempty"` // Distribution 2; see Addresses
	Addrs                 []string      `yaml:"addrs,omitempty"`
	ClientName            string        `yaml:"clientname,omitempty"`
	DB                    int           `yaml:"db,omitempty"`
	Protocol              int           `yaml:"protocol,omitempty"`
	Username              string        `yaml:"username,omitempty"`
	Password              string        `yaml:"password,omitempty"`
	SentinelUsername      string        `yaml:"sentinelusername,omitempty"`
	SentinelPassword      string        `yaml:"sentinelpassword,omitempty"`
	MasterName            string        `yaml:"mastername,omitempty"`
	MaxRetries            int           `yaml:"maxretries,omitempty"`
	MinRetryBackoff       time.Duration `yaml:"minretrybackoff,omitempty"`
	MaxRetryBackoff       time.Duration `yaml:"maxretrybackoff,omitempty"`
	DialTimeout           time.Duration `yaml:"dialtimeout,omitempty"`
	ReadTimeout           time.Duration `yaml:"readtimeout,omitempty"`
	WriteTimeout          time.Duration `yaml:"writetimeout,omitempty"`
	ContextTimeoutEnabled bool          `yaml:"contexttimeoutenabled,omitempty"`
	PoolFIFO              bool          `yaml:"poolfifo,omitempty"`
	PoolSize              int           `yaml:"poolsize,omitempty"`
	PoolTimeout           time.Duration `yaml:"pooltimeout,omitempty"`
	MinIdleConns          int           `yaml:"minidleconns,omitempty"`
	MaxIdleConns          int           `yaml:"maxidleconns,omitempty"`
	MaxActiveConns        int           `yaml:"maxactiveconns,omitempty"`
	ConnMaxIdleTime       time.Duration `yaml:"connmaxidletime,omitempty"`
	ConnMaxLifetime       time.Duration `yaml:"connmaxlifetime,omitempty"`
	MaxRedirects          int           `yaml:"maxredirects,omitempty"`
	ReadOnly              bool          `yaml:"readonly,omitempty"`
	RouteByLatency        bool          `yaml:"routebylatency,omitempty"`
	RouteRandomly         bool          `yaml:"routerandomly,omitempty"`
	DisableIdentity       bool          `yaml:"disableidentity,omitempty"`
	IdentitySuffix        string        `yaml:"identitysuffix,omitempty"`
	UnstableResp3         bool          `yaml:"unstableresp3,omitempty"`
	Pool                  RedisPool     `yaml:"pool,omitempty"` // Distribution 2
	TLS                   RedisTLS      `yaml:"tls,omitempty"`
	// Harbor's registry template writes these; they are copied to
	// TLS.Enabled and MasterName, their Distribution meaning.
	EnableTLS         bool   `yaml:"enabletls,omitempty"`
	SentinelMasterSet string `yaml:"sentinelmasterset,omitempty"`
}

// Addresses merges addr and addrs.
func (r Redis) Addresses() []string {
	if r.Addr == "" {
		return r.Addrs
	}
	return append([]string{r.Addr}, r.Addrs...)
}

// RedisPool is Distribution 2's pool section.
type RedisPool struct {
	MaxIdle     int           `yaml:"maxidle,omitempty"`
	MaxActive   int           `yaml:"maxactive,omitempty"`
	IdleTimeout time.Duration `yaml:"idletimeout,omitempty"`
}

// RedisTLS configures TLS to Redis. Enabled is Distribution 2's switch;
// Distribution 3 turns TLS on when any file is given.
type RedisTLS struct {
	Enabled     bool     `yaml:"enabled,omitempty"`
	Certificate string   `yaml:"certificate,omitempty"`
	Key         string   `yaml:"key,omitempty"`
	RootCAs     []string `yaml:"rootcas,omitempty"`
}

// Health configures periodic health checks.
type Health struct {
	StorageDriver StorageDriverCheck `yaml:"storagedriver,omitempty"`
	File          []FileCheck        `yaml:"file,omitempty"`
	HTTP          []HTTPCheck        `yaml:"http,omitempty"`
	TCP           []TCPCheck         `yaml:"tcp,omitempty"`
}

// StorageDriverCheck probes the storage backend.
type StorageDriverCheck struct {
	Enabled   bool          `yaml:"enabled,omitempty"`
	Interval  time.Duration `yaml:"interval,omitempty"` // default 10s
	Threshold int           `yaml:"threshold,omitempty"`
}

// FileCheck fails while a file exists.
type FileCheck struct {
	File      string        `yaml:"file"`
	Interval  time.Duration `yaml:"interval,omitempty"` // default 10s
	Threshold int           `yaml:"threshold,omitempty"`
}

// HTTPCheck sends HEAD requests to a URI.
type HTTPCheck struct {
	URI        string              `yaml:"uri"`
	Headers    map[string][]string `yaml:"headers,omitempty"`
	StatusCode int                 `yaml:"statuscode,omitempty"` // default 200
	Timeout    time.Duration       `yaml:"timeout,omitempty"`
	Interval   time.Duration       `yaml:"interval,omitempty"` // default 10s
	Threshold  int                 `yaml:"threshold,omitempty"`
}

// TCPCheck dials an address.
type TCPCheck struct {
	Addr      string        `yaml:"addr"`
	Timeout   time.Duration `yaml:"timeout,omitempty"`
	Interval  time.Duration `yaml:"interval,omitempty"` // default 10s
	Threshold int           `yaml:"threshold,omitempty"`
}

// Catalog limits /v2/_catalog.
type Catalog struct {
	MaxEntries int `yaml:"maxentries,omitempty"` // default 1000
}

// Tags limits tag lists.
type Tags struct {
	MaxTags int `yaml:"maxtags,omitempty"` // default 1000
}

// Proxy makes the registry a pull-through cache of RemoteURL.
type Proxy struct {
	RemoteURL         string         `yaml:"remoteurl,omitempty"`
	Username          string         `yaml:"username,omitempty"`
	Password          string         `yaml:"password,omitempty"`
	Exec              *Exec          `yaml:"exec,omitempty"`
	TTL               *time.Duration `yaml:"ttl,omitempty"` // default 168h when RemoteURL is set; 0: never expire
	CacheWriteTimeout *time.Duration `yaml:"cachewritetimeout,omitempty"`
}

// Exec runs a credential helper for the upstream registry.
type Exec struct {
	Command  string         `yaml:"command"`
	Lifetime *time.Duration `yaml:"lifetime,omitempty"`
}

// Validation restricts what may be pushed.
type Validation struct {
	// Enabled is deprecated; Disabled is its inverse, except that
	// enabled: true wins over disabled: true, as in Distribution.
	Enabled   bool                `yaml:"enabled,omitempty"`
	Disabled  bool                `yaml:"disabled,omitempty"`
	Manifests ValidationManifests `yaml:"manifests,omitempty"`
}

// ValidationManifests restricts manifests.
type ValidationManifests struct {
	URLs    URLs    `yaml:"urls,omitempty"`
	Indexes Indexes `yaml:"indexes,omitempty"`
}

// URLs are regular expressions that foreign-layer URLs must (not) match.
type URLs struct {
	Allow []string `yaml:"allow,omitempty"`
	Deny  []string `yaml:"deny,omitempty"`
}

// Indexes controls checking that an index's platform manifests exist.
type Indexes struct {
	Platforms    string     `yaml:"platforms,omitempty"` // all (default), none or list
	PlatformList []Platform `yaml:"platformlist,omitempty"`
}

// Platform is an OS and architecture pair.
type Platform struct {
	Architecture string `yaml:"architecture"`
	OS           string `yaml:"os"`
}

// Policy restricts repository content.
type Policy struct {
	Repository RepositoryPolicy `yaml:"repository,omitempty"`
}

// RepositoryPolicy lists the allowed repository classes.
type RepositoryPolicy struct {
	Classes []string `yaml:"classes,omitempty"`
}
