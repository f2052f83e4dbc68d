package s3

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/ranged"
)

const (
	minChunkSize     = 5 << 20 // S3's smallest non-final part
	maxChunkSize     = 5 << 30 // S3's largest part
	defaultChunkSize = 10 << 20

	defaultCopyChunkSize   = 32 << 20
	defaultCopyConcurrency = 100
	defaultCopyThreshold   = 32 << 20

	// Eight parts in flight, not four: through a link shaped like one
	// stream to S3 (bench -backend s3) a single push through the
	// registry went from 56 and 67 MB/s to 61 and 94, and the driver
	// alone from 39 to 57, on a loaded machine. writememory still bounds
	// what all writers hold together.
	defaultWriteConcurrency = 8
	maxConcurrency          = 64
	// Room for one writer's eight 10 MiB buffers, its own counted in (see
	// package inflight): a single push keeps eight parts in flight, and
	// eight pushes at once hold nine buffers, not eight plus six.
	defaultWriteMemory     = 96 << 20
	defaultReadConcurrency = ranged.DefaultConcurrency
	defaultReadMemory      = ranged.DefaultMemory

	defaultRedirectExpiry = 20 * time.Minute
	maxRedirectExpiry     = 7 * 24 * time.Hour // SigV4 presigned URLs live at most a week

	noStorageClass = "NONE"
)

// Params is the s3 section of the configuration. The keys are CNCF
// Distribution's, so its configuration files work unchanged.
type Params struct {
	AccessKey      string `yaml:"accesskey"`
	SecretKey      string `yaml:"secretkey"`
	SessionToken   string `yaml:"sessiontoken"`
	Region         string `yaml:"region"`
	RegionEndpoint string `yaml:"regionendpoint"`
	ForcePathStyle bool   `yaml:"forcepathstyle"`
	Bucket         string `yaml:"bucket"`
	Encrypt        bool   `yaml:"encrypt"`
	KeyID          string `yaml:"keyid"`
	Secure         *bool  `yaml:"secure"`
	SkipVerify     bool   `yaml:"skipverify"`
	V4Auth         *bool  `yaml:"v4auth"`

	ChunkSize                   int64  `yaml:"chunksize"`
	MultipartCopyChunkSize      int64  `yaml:"multipartcopychunksize"`
	MultipartCopyMaxConcurrency int64  `yaml:"multipartcopymaxconcurrency"`
	MultipartCopyThresholdSize  *int64 `yaml:"multipartcopythresholdsize"`

	RootDirectory   string `yaml:"rootdirectory"`
	StorageClass    string `yaml:"storageclass"`
	ObjectACL       string `yaml:"objectacl"`
	UserAgent       string `yaml:"useragent"`
	UseDualStack    bool   `yaml:"usedualstack"`
	UseFIPSEndpoint bool   `yaml:"usefipsendpoint"`
	Accelerate      bool   `yaml:"accelerate"`
	// LogLevel is a string, but YAML 1.1 reads a bare off as false.
	LogLevel any `yaml:"loglevel"`

	// RedirectExpiry is Berth's own key: how long a presigned URL handed to
	// a client stays valid, as a Go duration ("20m").
	RedirectExpiry string `yaml:"redirectexpiry"`
	// WriteConcurrency is Berth's own key: how many parts of one write are
	// uploaded at a time.
	WriteConcurrency int `yaml:"writeconcurrency"`
	// WriteMemory is Berth's own key: the bytes of part buffers all writers
	// together may hold beyond the one buffer each always has.
	WriteMemory *int64 `yaml:"writememory"`
	// ReadConcurrency is Berth's own key: how many ranges of one read are
	// fetched at a time.
	ReadConcurrency int `yaml:"readconcurrency"`
	// ReadMemory is Berth's own key: the bytes of range buffers all
	// readers together may hold.
	ReadMemory *int64 `yaml:"readmemory"`
}

// config is Params checked and with its defaults filled in.
type config struct {
	Params
	secure         bool
	chunkSize      int64
	copyChunkSize  int64
	copyThreshold  int64
	copyParallel   int
	root           string // key prefix: "" or "dir/"
	storageClass   types.StorageClass
	acl            types.ObjectCannedACL
	logMode        aws.ClientLogMode
	redirectExpiry time.Duration
	// writeConcurrency is parts in flight per writer; writeBuffers is how
	// many buffers all writers may hold together, each one's own counted
	// when there is room (writememory over chunksize).
	writeConcurrency int
	writeBuffers     int64
	readConcurrency  int
	readBuffers      int64
}

var storageClasses = []string{
	noStorageClass,
	string(types.StorageClassStandard),
	string(types.StorageClassReducedRedundancy),
	string(types.StorageClassStandardIa),
	string(types.StorageClassOnezoneIa),
	string(types.StorageClassIntelligentTiering),
	string(types.StorageClassOutposts),
	string(types.StorageClassGlacierIr),
	string(types.StorageClassExpressOnezone),
}

var objectACLs = []string{
	string(types.ObjectCannedACLPrivate),
	string(types.ObjectCannedACLPublicRead),
	string(types.ObjectCannedACLPublicReadWrite),
	string(types.ObjectCannedACLAuthenticatedRead),
	string(types.ObjectCannedACLAwsExecRead),
	string(types.ObjectCannedACLBucketOwnerRead),
	string(types.ObjectCannedACLBucketOwnerFullControl),
}

// ErrParams marks a configuration the driver refuses.
var ErrParams = errors.New("invalid s3 parameters")

func paramErr(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrParams, key, fmt.Sprintf(format, args...))
}

// parseParams decodes and checks a configuration section.
func parseParams(raw driver.Params) (config, error) {
	var c config
	if err := driver.DecodeParams(raw, &c.Params); err != nil {
		return c, fmt.Errorf("%w: %w", ErrParams, err)
	}
	p := &c.Params
	if p.Bucket == "" {
		return c, paramErr("bucket", "required")
	}
	if p.Region == "" {
		if p.RegionEndpoint == "" {
			return c, paramErr("region", "required unless regionendpoint is set")
		}
		// Most S3-compatible servers accept any region; sign for the usual one.
		p.Region = "us-east-1"
	}
	if (p.AccessKey == "") != (p.SecretKey == "") {
		return c, paramErr("accesskey", "accesskey and secretkey must be set together")
	}
	c.secure = p.Secure == nil || *p.Secure

	var err error
	if c.chunkSize, err = sizeParam("chunksize", p.ChunkSize, defaultChunkSize, minChunkSize, maxChunkSize); err != nil {
		return c, err
	}
	if c.copyChunkSize, err = sizeParam("multipartcopychunksize", p.MultipartCopyChunkSize, defaultCopyChunkSize, minChunkSize, maxChunkSize); err != nil {
		return c, err
	}
	c.copyThreshold = defaultCopyThreshold
	if t := p.MultipartCopyThresholdSize; t != nil {
		if *t < 0 || *t > maxChunkSize {
			return c, paramErr("multipartcopythresholdsize", "%d is not between 0 and %d", *t, int64(maxChunkSize))
		}
		c.copyThreshold = *t
	}
	switch n := p.MultipartCopyMaxConcurrency; {
	case n == 0:
		c.copyParallel = defaultCopyConcurrency
	case n < 0 || n > 10000: // no more parts than S3 allows in one upload
		return c, paramErr("multipartcopymaxconcurrency", "%d is not between 1 and 10000", n)
	default:
		c.copyParallel = int(n)
	}

	if c.writeConcurrency, err = countParam("writeconcurrency", p.WriteConcurrency, defaultWriteConcurrency, maxConcurrency); err != nil {
		return c, err
	}
	if c.writeBuffers, err = memoryParam("writememory", p.WriteMemory, defaultWriteMemory, c.chunkSize); err != nil {
		return c, err
	}
	if c.readConcurrency, err = countParam("readconcurrency", p.ReadConcurrency, defaultReadConcurrency, maxConcurrency); err != nil {
		return c, err
	}
	if c.readBuffers, err = memoryParam("readmemory", p.ReadMemory, defaultReadMemory, c.chunkSize); err != nil {
		return c, err
	}

	if root := strings.Trim(p.RootDirectory, "/"); root != "" {
		c.root = root + "/"
	}

	sc := strings.ToUpper(p.StorageClass)
	if sc == "" {
		sc = string(types.StorageClassStandard)
	}
	if !slices.Contains(storageClasses, sc) {
		return c, paramErr("storageclass", "%q is not one of %v", p.StorageClass, storageClasses)
	}
	if sc != noStorageClass {
		c.storageClass = types.StorageClass(sc)
	}

	acl := p.ObjectACL
	if acl == "" {
		acl = string(types.ObjectCannedACLPrivate)
	}
	if !slices.Contains(objectACLs, acl) {
		return c, paramErr("objectacl", "%q is not one of %v", p.ObjectACL, objectACLs)
	}
	// Objects are private anyway; leaving the header off keeps buckets whose
	// ACLs are disabled (Object Ownership "bucket owner enforced") working.
	if acl != string(types.ObjectCannedACLPrivate) {
		c.acl = types.ObjectCannedACL(acl)
	}

	if c.logMode, err = logMode(p.LogLevel); err != nil {
		return c, err
	}

	c.redirectExpiry = defaultRedirectExpiry
	if p.RedirectExpiry != "" {
		d, err := time.ParseDuration(p.RedirectExpiry)
		if err != nil || d <= 0 || d > maxRedirectExpiry {
			return c, paramErr("redirectexpiry", "%q is not a duration between 1s and 168h", p.RedirectExpiry)
		}
		c.redirectExpiry = d
	}
	return c, nil
}

func countParam(key string, v, def, hi int) (int, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 1 || v > hi:
		return 0, paramErr(key, "%d is not between 1 and %d", v, hi)
	}
	return v, nil
}

// memoryParam turns a byte budget into a count of chunk-sized buffers.
func memoryParam(key string, v *int64, def, chunk int64) (int64, error) {
	mem := def
	if v != nil {
		if *v < 0 {
			return 0, paramErr(key, "%d is negative", *v)
		}
		mem = *v
	}
	return mem / chunk, nil
}

func sizeParam(key string, v, def, lo, hi int64) (int64, error) {
	if v == 0 {
		return def, nil
	}
	if v < lo || v > hi {
		return 0, paramErr(key, "%d is not between %d and %d", v, lo, hi)
	}
	return v, nil
}

// logMode maps Distribution's (SDK v1) log levels onto the v2 SDK's modes.
func logMode(v any) (aws.ClientLogMode, error) {
	var s string
	switch v := v.(type) {
	case nil:
		return 0, nil
	case bool:
		if !v {
			return 0, nil
		}
		return 0, paramErr("loglevel", "true is not a log level")
	case string:
		s = strings.ToLower(v)
	default:
		return 0, paramErr("loglevel", "%v is not a log level", v)
	}
	switch s {
	case "", "off":
		return 0, nil
	case "debug", "debugwithrequesterrors":
		return aws.LogRequest | aws.LogResponse, nil
	case "debugwithsigning":
		return aws.LogRequest | aws.LogResponse | aws.LogSigning, nil
	case "debugwithhttpbody":
		return aws.LogRequestWithBody | aws.LogResponseWithBody, nil
	case "debugwithrequestretries":
		return aws.LogRequest | aws.LogResponse | aws.LogRetries, nil
	case "debugwitheventstreambody":
		return aws.LogRequest | aws.LogResponse | aws.LogRequestEventMessage | aws.LogResponseEventMessage, nil
	}
	return 0, paramErr("loglevel", "%q is not one of off, debug, debugwithsigning, debugwithhttpbody, debugwithrequestretries, debugwithrequesterrors, debugwitheventstreambody", s)
}
