package config

import "time"

// Berth holds the keys Distribution does not have. Distribution ignores an
// unknown top-level section, so a file with one still starts registry:3
// and one file can serve both during a migration; inside Distribution's
// own sections a Berth key could break it (storage.gc reads as a second
// storage driver). The subsections mirror Distribution's section names.
type Berth struct {
	Storage BerthStorage `yaml:"storage,omitempty"`
	HTTP    BerthHTTP    `yaml:"http,omitempty"`
	Auth    BerthAuth    `yaml:"auth,omitempty"`
	Proxy   BerthProxy   `yaml:"proxy,omitempty"`
	// Mirrors are pull-through caches of several upstreams, each serving
	// the repositories under its prefix.
	Mirrors []Mirror `yaml:"mirrors,omitempty"`
}

// BerthStorage is berth.storage.
type BerthStorage struct {
	GC GC `yaml:"gc,omitempty"`
	// Timeouts bound each call to the storage backend (berth.go).
	Timeouts StorageTimeouts `yaml:"timeouts,omitempty"`
	// UploadLease is how long a request holds its upload session between
	// renewals: a request whose instance died blocks the session for this
	// long plus LeaseSkew. Default DefaultUploadLease.
	UploadLease time.Duration `yaml:"uploadlease,omitempty"`
	// LeaseSkew is how long past its expiry a lease's claim is honoured by
	// other instances: the clock difference between hosts, plus the time a
	// write takes to land, that leases tolerate. Default DefaultLeaseSkew.
	LeaseSkew time.Duration `yaml:"leaseskew,omitempty"`
	Cache     BerthCache    `yaml:"cache,omitempty"`
	// DistributionUploads leaves upload sessions, between requests, in
	// the form CNCF Distribution continues too, for a fleet where both
	// serve one store during a migration. Default off.
	DistributionUploads bool `yaml:"distributionuploads,omitempty"`
	// CatalogIndex keeps, on an object store, one empty object per
	// repository under _berth/catalog, from which the catalog is served a
	// page per listing (storage/catalogindex.go). Default on; off while
	// DistributionUploads is set, whatever this says.
	CatalogIndex *bool `yaml:"catalogindex,omitempty"`
}

// CatalogIndexOn tells whether the catalog index is kept: on unless turned
// off, and never beside Distribution (DistributionUploads), whose
// instances would not write the index.
func (s BerthStorage) CatalogIndexOn() bool {
	return (s.CatalogIndex == nil || *s.CatalogIndex) && !s.DistributionUploads
}

// BerthCache is berth.storage.cache: the in-memory caches beside
// Distribution's storage.cache.
type BerthCache struct {
	// ContentBytes bounds the bytes of manifests and small blobs each
	// instance keeps in memory by digest; 0 for the content model's
	// default (64 MiB).
	ContentBytes int64 `yaml:"contentbytes,omitempty"`
}

// DefaultUploadLease and DefaultLeaseSkew are berth.storage's defaults:
// a crashed instance blocks its sessions for 90 seconds.
const (
	DefaultUploadLease = time.Minute
	DefaultLeaseSkew   = 30 * time.Second
	// maxLeaseSkew keeps the skew below the garbage collection's lease
	// (2m), which stops deleting a skew before its end.
	maxLeaseSkew = time.Minute
)

// BerthHTTP is berth.http.
type BerthHTTP struct {
	// BodyIdleTimeout ends a request whose body sends nothing for this
	// long; 0 turns it off. Default DefaultBodyIdleTimeout.
	BodyIdleTimeout time.Duration `yaml:"bodyidletimeout,omitempty"`
	// TrustedProxies are CIDRs (or addresses) of the proxies whose
	// X-Forwarded-For, Forwarded and X-Real-Ip headers are believed.
	TrustedProxies []string `yaml:"trustedproxies,omitempty"`
}

// DefaultBodyIdleTimeout is berth.http.bodyidletimeout when it is not set:
// long enough for a client reading a slow disk, short enough that a
// stalled push does not hold a goroutine and a file for long.
const DefaultBodyIdleTimeout = 60 * time.Second

// BerthProxy tunes the pull-through cache of the proxy section, and is
// the default of every mirror.
type BerthProxy struct {
	// Freshness is how long a tag is served from the cache before the
	// upstream is asked whether it moved. Default 30s; 0 asks every time.
	Freshness *time.Duration `yaml:"freshness,omitempty"`
	// Timeout bounds each upstream call (30s by default).
	Timeout time.Duration `yaml:"timeout,omitempty"`
}

// Mirror is one upstream of berth.mirrors.
type Mirror struct {
	// Prefix is the repository prefix served from the upstream
	// ("docker.io": docker.io/library/alpine is its library/alpine).
	Prefix       string         `yaml:"prefix"`
	RemoteURL    string         `yaml:"remoteurl"`
	Username     string         `yaml:"username,omitempty"`
	Password     string         `yaml:"password,omitempty"`
	PasswordFile string         `yaml:"passwordfile,omitempty"`
	Exec         *Exec          `yaml:"exec,omitempty"`
	TTL          *time.Duration `yaml:"ttl,omitempty"` // default 168h; 0: never expire
	Freshness    *time.Duration `yaml:"freshness,omitempty"`
	Timeout      time.Duration  `yaml:"timeout,omitempty"`
}

// BerthAuth extends the auth section.
type BerthAuth struct {
	Htpasswd BerthHtpasswd `yaml:"htpasswd,omitempty"`
}

// BerthHtpasswd limits failed htpasswd logins per client address.
type BerthHtpasswd struct {
	// MaxFailures is how many failed logins a client may make within
	// FailureWindow before it gets 429 until the window ends; 0 turns
	// the limit off. Default 10.
	MaxFailures int `yaml:"maxfailures"`
	// FailureWindow starts at a client's first failure. Default 1m.
	FailureWindow time.Duration `yaml:"failurewindow"`
}

// StorageTimeouts bound each call to the storage backend, by class of
// operation (see driver.Timeouts). Zero keeps the default.
type StorageTimeouts struct {
	Metadata time.Duration `yaml:"metadata,omitempty"`
	Read     time.Duration `yaml:"read,omitempty"`
	Write    time.Duration `yaml:"write,omitempty"`
	Commit   time.Duration `yaml:"commit,omitempty"`
}

// checkBerthTimeouts refuses what cannot be a timeout.
func (p *parser) checkBerthTimeouts(t *StorageTimeouts) {
	for _, k := range []struct {
		key string
		d   time.Duration
	}{{"metadata", t.Metadata}, {"read", t.Read}, {"write", t.Write}, {"commit", t.Commit}} {
		if k.d < 0 {
			p.fail("berth.storage.timeouts."+k.key, "must not be negative, got %s", k.d)
		}
	}
}
