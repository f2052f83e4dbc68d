package swift

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

const (
	defaultChunkSize = 20 << 20 // Distribution's segment size
	minChunkSize     = 1 << 20
	maxChunkSize     = 5 << 30 // Swift's default max_file_size

	redirectExpiry = 20 * time.Minute
)

// Params is the swift section of the configuration. The keys are CNCF
// Distribution v2's (v3 dropped the driver), so its files work unchanged.
type Params struct {
	AuthURL        string `yaml:"authurl"`
	Username       string `yaml:"username"`
	Password       string `yaml:"password"`
	Container      string `yaml:"container"`
	Region         string `yaml:"region"`
	Tenant         any    `yaml:"tenant"`   // a numeric tenant reads as a number from YAML
	TenantID       any    `yaml:"tenantid"` // likewise
	Domain         string `yaml:"domain"`
	DomainID       string `yaml:"domainid"`
	TenantDomain   string `yaml:"tenantdomain"`
	TenantDomainID string `yaml:"tenantdomainid"`
	TrustID        string `yaml:"trustid"`
	AuthVersion    int    `yaml:"authversion"`
	EndpointType   string `yaml:"endpointtype"`
	Prefix         string `yaml:"prefix"`

	InsecureSkipVerify bool  `yaml:"insecureskipverify"`
	ChunkSize          int64 `yaml:"chunksize"`

	// Temporary URLs for redirects: the key, where it is set, and which
	// methods the tempurl middleware allows.
	SecretKey           string   `yaml:"secretkey"`
	AccessKey           string   `yaml:"accesskey"`
	TempURLContainerKey bool     `yaml:"tempurlcontainerkey"`
	TempURLMethods      []string `yaml:"tempurlmethods"`
}

type config struct {
	Params
	tenant, tenantID string
	prefix           string // object name prefix: "" or "dir/"
}

func newConfig(params driver.Params) (*config, error) {
	var p Params
	if err := driver.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	c := &config{Params: p}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &driver.ParamError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for key, v := range map[string]string{"authurl": c.AuthURL, "username": c.Username, "password": c.Password, "container": c.Container} {
		if v == "" {
			bad(key, "is required")
		}
	}
	if c.AuthURL != "" {
		if u, err := url.Parse(c.AuthURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("authurl", "must be an http or https URL, not %q", c.AuthURL)
		}
	}
	c.tenant, c.tenantID = str(c.Tenant), str(c.TenantID)
	if c.AuthVersion < 0 || c.AuthVersion > 3 {
		bad("authversion", "must be 1, 2 or 3 (0 guesses from authurl), not %d", c.AuthVersion)
	}
	switch c.EndpointType {
	case "", "public", "internal", "admin":
	default:
		bad("endpointtype", "must be public, internal or admin, not %q", c.EndpointType)
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = defaultChunkSize
	}
	if c.ChunkSize < minChunkSize || c.ChunkSize > maxChunkSize {
		bad("chunksize", "must be between %d and %d bytes, not %d", int64(minChunkSize), int64(maxChunkSize), c.ChunkSize)
	}
	for i, m := range c.TempURLMethods {
		c.TempURLMethods[i] = strings.ToUpper(m)
	}
	if c.SecretKey != "" && len(c.TempURLMethods) > 0 && !slices.Contains(c.TempURLMethods, "GET") {
		bad("tempurlmethods", "must include GET for redirects, got %v", c.TempURLMethods)
	}
	if pr := strings.Trim(c.Prefix, "/"); pr != "" {
		if !driver.ValidPath("/" + pr) {
			bad("prefix", "must be a slash-separated path of [A-Za-z0-9._-] components, not %q", c.Prefix)
		}
		c.prefix = pr + "/"
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
