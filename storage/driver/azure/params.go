package azure

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/ranged"
)

const (
	defaultRealm      = "core.windows.net"
	defaultMaxRetries = 5
	defaultRetryDelay = 100 * time.Millisecond

	// A block may hold up to 4000 MiB and a blob up to 50 000 blocks; 8 MiB
	// blocks allow blobs of 390 GiB with one 8 MiB buffer per writer.
	defaultChunkSize = 8 << 20

	defaultWriteConcurrency = 4
	maxWriteConcurrency     = 64
	defaultWriteMemory      = 64 << 20
	minChunkSize            = 1 << 10
	maxChunkSize            = 4000 << 20

	defaultRedirectExpiry = 20 * time.Minute
	maxRedirectExpiry     = 7 * 24 * time.Hour // a user delegation key lives a week at most
)

// Credential types, as Distribution spells them.
const (
	credSharedKey    = "shared_key"
	credClientSecret = "client_secret"
	credDefault      = "default_credentials"
)

// Credentials selects how the driver authenticates.
type Credentials struct {
	Type     string `yaml:"type"`
	ClientID string `yaml:"clientid"`
	TenantID string `yaml:"tenantid"`
	Secret   string `yaml:"secret"`
}

// Params is the azure section of the configuration. The keys are CNCF
// Distribution's (v2 and v3), so its configuration files work unchanged.
type Params struct {
	AccountName      string      `yaml:"accountname"`
	AccountKey       string      `yaml:"accountkey"`
	Container        string      `yaml:"container"`
	Credentials      Credentials `yaml:"credentials"`
	ConnectionString string      `yaml:"connectionstring"`
	Realm            string      `yaml:"realm"`
	RootDirectory    string      `yaml:"rootdirectory"`
	ServiceURL       string      `yaml:"serviceurl"`
	SkipVerify       bool        `yaml:"skipverify"`

	// MaxRetries and RetryDelay bound both the SDK's retries of throttled
	// or failed requests and the polling of a server-side copy, as in
	// Distribution v3. -1 disables retries.
	MaxRetries int           `yaml:"max_retries"`
	RetryDelay time.Duration `yaml:"retry_delay"`

	// Distribution v2.8's names for the copy polling bounds; accepted so
	// old files load, used when the v3 keys are absent.
	CopyStatusPollMaxRetry int           `yaml:"copy_status_poll_max_retry"`
	CopyStatusPollDelay    time.Duration `yaml:"copy_status_poll_delay"`

	// Berth's own keys.
	ChunkSize      int64         `yaml:"chunksize"`
	RedirectExpiry time.Duration `yaml:"redirectexpiry"`
	// WriteConcurrency is how many blocks of one write are staged at a
	// time; WriteMemory the bytes of block buffers all writers together
	// may hold beyond the one each always has.
	WriteConcurrency int    `yaml:"writeconcurrency"`
	WriteMemory      *int64 `yaml:"writememory"`
	// ReadConcurrency is how many ranges of one read are fetched at a
	// time; ReadMemory the bytes of range buffers all readers together
	// may hold. As the s3 driver's.
	ReadConcurrency int    `yaml:"readconcurrency"`
	ReadMemory      *int64 `yaml:"readmemory"`
}

// config is Params checked, with defaults filled in.
type config struct {
	Params
	credType   string
	serviceURL string
	root       string // blob name prefix: "" or "dir/"
	// writeBuffers is writememory over chunksize, readBuffers
	// readmemory over chunksize.
	writeBuffers int64
	readBuffers  int64
}

// newConfig decodes and checks the azure section.
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

	if c.Container == "" {
		bad("container", "is required")
	}
	if c.Realm == "" {
		c.Realm = defaultRealm
	}
	c.credType = strings.ToLower(c.Credentials.Type)
	switch c.credType {
	case "":
		// Distribution v2 had no credentials section: an account key
		// means shared key.
		if c.ConnectionString == "" {
			c.credType = credSharedKey
		}
	case "default":
		c.credType = credDefault // the spelling Distribution's docs once used
	case credSharedKey, credDefault:
	case credClientSecret:
		for key, v := range map[string]string{"clientid": c.Credentials.ClientID, "tenantid": c.Credentials.TenantID, "secret": c.Credentials.Secret} {
			if v == "" {
				bad("credentials."+key, "is required with type client_secret")
			}
		}
	default:
		bad("credentials.type", "must be shared_key, client_secret or default_credentials, not %q", c.Credentials.Type)
	}
	if c.ConnectionString == "" {
		if c.AccountName == "" {
			bad("accountname", "is required")
		}
		if c.credType == credSharedKey && c.AccountKey == "" {
			bad("accountkey", "is required with shared key credentials")
		}
	}

	c.serviceURL = c.ServiceURL
	if c.serviceURL == "" && c.ConnectionString == "" {
		c.serviceURL = "https://" + c.AccountName + ".blob." + c.Realm
	}
	if c.serviceURL != "" {
		u, err := url.Parse(c.serviceURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("serviceurl", "must be an http or https URL, not %q", c.serviceURL)
		}
	}

	if c.MaxRetries == 0 {
		c.MaxRetries = c.CopyStatusPollMaxRetry
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = defaultMaxRetries
	}
	if c.MaxRetries < -1 {
		bad("max_retries", "must be -1 (no retries) or more, not %d", c.MaxRetries)
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = c.CopyStatusPollDelay
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = defaultRetryDelay
	}
	if c.RetryDelay < 0 {
		bad("retry_delay", "must not be negative")
	}

	if c.ChunkSize == 0 {
		c.ChunkSize = defaultChunkSize
	}
	if c.ChunkSize < minChunkSize || c.ChunkSize > maxChunkSize {
		bad("chunksize", "must be between %d and %d bytes, not %d", int64(minChunkSize), int64(maxChunkSize), c.ChunkSize)
	}
	if c.WriteConcurrency == 0 {
		c.WriteConcurrency = defaultWriteConcurrency
	}
	if c.WriteConcurrency < 1 || c.WriteConcurrency > maxWriteConcurrency {
		bad("writeconcurrency", "must be between 1 and %d, not %d", maxWriteConcurrency, c.WriteConcurrency)
	}
	mem := int64(defaultWriteMemory)
	if c.WriteMemory != nil {
		mem = *c.WriteMemory
	}
	if mem < 0 {
		bad("writememory", "must not be negative, not %d", mem)
	} else if c.ChunkSize > 0 {
		c.writeBuffers = mem / c.ChunkSize
	}
	if c.ReadConcurrency == 0 {
		c.ReadConcurrency = ranged.DefaultConcurrency
	}
	if c.ReadConcurrency < 1 || c.ReadConcurrency > ranged.MaxConcurrency {
		bad("readconcurrency", "must be between 1 and %d, not %d", ranged.MaxConcurrency, c.ReadConcurrency)
	}
	readMem := int64(ranged.DefaultMemory)
	if c.ReadMemory != nil {
		readMem = *c.ReadMemory
	}
	if readMem < 0 {
		bad("readmemory", "must not be negative, not %d", readMem)
	} else if c.ChunkSize > 0 {
		c.readBuffers = readMem / c.ChunkSize
	}
	if c.RedirectExpiry == 0 {
		c.RedirectExpiry = defaultRedirectExpiry
	}
	if c.RedirectExpiry < time.Second || c.RedirectExpiry > maxRedirectExpiry {
		bad("redirectexpiry", "must be between 1s and %s, not %s", maxRedirectExpiry, c.RedirectExpiry)
	}

	// Distribution joins the root and the path and trims slashes, so
	// "/registry/" and "registry" name the same prefix.
	if r := strings.Trim(c.RootDirectory, "/"); r != "" {
		if !driver.ValidPath("/" + r) {
			bad("rootdirectory", "must be a slash-separated path of [A-Za-z0-9._-] components, not %q", c.RootDirectory)
		}
		c.root = r + "/"
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}
