// Package s3 is Berth's storage driver for Amazon S3 and S3-compatible
// object stores, on the AWS SDK for Go v2. It stores bytes at paths: one
// object per file, directories implied by key prefixes. It knows nothing of
// blobs or manifests.
//
// Unfinished writes are multipart uploads on the file's own key, plus a
// small state object under "<root>~berth/uploads/" holding the bytes that
// did not yet fill a part. '~' cannot appear in a driver path, so neither
// List nor Walk can ever show those objects.
package s3

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/berth-registry/berth/storage/driver/internal/partbuf"
	"github.com/berth-registry/berth/storage/driver/internal/ranged"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"golang.org/x/sync/semaphore"

	"github.com/berth-registry/berth/storage/driver"
)

const name = "s3"

func init() {
	driver.Register(name, func(ctx context.Context, params driver.Params) (driver.Driver, error) {
		return New(ctx, params)
	})
	driver.RegisterCheck(name, func(params driver.Params) error {
		_, err := parseParams(params)
		return err
	})
}

// stateDir holds unfinished-write state below the root; see the package doc.
const stateDir = "~berth/uploads/"

// Driver stores files as objects in one bucket.
type Driver struct {
	c       *s3.Client
	presign *s3.PresignClient
	// lean sends HEAD, GET, PUT and DELETE of one object without the
	// SDK's stack (lean.go); nil when they go through the SDK.
	lean   *lean
	cfg    config
	bucket *string
	bufs   *partbuf.Pool // part buffers of cfg.chunkSize
	// memory counts the part buffers writers hold beyond their first
	// (writememory).
	memory *semaphore.Weighted
	// reads fetches the ranges of parallel reads (readconcurrency,
	// readmemory).
	reads *ranged.Reads
	// kept counts the tails closed writers keep for Reopen (kept.go).
	kept *semaphore.Weighted
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Walker        = (*Driver)(nil)
	_ driver.Redirector    = (*Driver)(nil)
	_ driver.ContentPutter = (*Driver)(nil)
	_ driver.UploadLister  = (*Driver)(nil)
)

// New builds a driver from its configuration section. It does not contact
// the bucket: a registry starting while S3 is briefly unreachable still
// starts, and its health check reports the outage.
func New(ctx context.Context, params driver.Params) (*Driver, error) {
	cfg, err := parseParams(params)
	if err != nil {
		return nil, err
	}
	if cfg.V4Auth != nil && !*cfg.V4Auth {
		// SDK v2 signs only with SigV4, which every current S3 server accepts.
		slog.Warn("s3 v4auth false ignored", "reason", "signature version 2 is not supported")
	}

	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Region),
		awsconfig.WithClientLogMode(cfg.logMode),
		awsconfig.WithLogger(slogLogger{slog.Default()}),
	}
	if cfg.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	if cfg.SkipVerify {
		opts = append(opts, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the operator asked for it
		})))
	}
	// Without explicit keys this is the SDK's default chain: environment,
	// shared config and credentials files, web identity (IRSA), ECS and EC2
	// instance roles. The SDK's standard retryer (exponential backoff with
	// jitter on throttling, 5xx and connection errors) is the default.
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load aws config: %w", err)
	}

	endpoint := cfg.RegionEndpoint
	if endpoint != "" && !strings.Contains(endpoint, "://") {
		if cfg.secure {
			endpoint = "https://" + endpoint
		} else {
			endpoint = "http://" + endpoint
		}
	}
	ua := sdkUserAgent(cfg.UserAgent)
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
		o.UseAccelerate = cfg.Accelerate
		o.EndpointOptions.DisableHTTPS = !cfg.secure
		if cfg.UseDualStack {
			o.EndpointOptions.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
		}
		if cfg.UseFIPSEndpoint {
			o.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
		}
		// Checksums only where S3 demands them: many S3-compatible servers
		// reject the SDK's default CRC trailers on multipart uploads.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.APIOptions = append(o.APIOptions, trimStack(ua, cfg.logMode != 0))
		o.EndpointResolverV2 = newCachedEndpoints(o.EndpointResolverV2)
	})

	// With loglevel set the SDK logs every request; the lean path would
	// hide the commonest. An endpoint the rules refuse is left to the SDK,
	// which reports it on each request, as before.
	var fast *lean
	if cfg.logMode == 0 {
		fast = newLean(ctx, client, cfg.Bucket, ua)
	}
	d := &Driver{
		lean:    fast,
		c:       client,
		presign: s3.NewPresignClient(client),
		cfg:     cfg,
		bucket:  aws.String(cfg.Bucket),
	}
	d.bufs = partbuf.New(int(cfg.chunkSize), 4)
	d.memory = semaphore.NewWeighted(cfg.writeBuffers)
	d.reads = ranged.New(d.bufs, cfg.readConcurrency, cfg.readBuffers)
	d.kept = semaphore.NewWeighted(keptTailMemory)
	return d, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return name }

// key maps a driver path to its object key: below the root, no leading slash.
// The root "/" maps to the root prefix itself ("" or "dir/").
// ObjectKey implements driver.ObjectKeyer: the bucket's key for path,
// which a CloudFront distribution in front of the bucket serves.
func (d *Driver) ObjectKey(path string) string { return d.key(path) }

func (d *Driver) key(path string) string {
	if path == "/" {
		return d.cfg.root
	}
	return d.cfg.root + path[1:]
}

// dirPrefix is the prefix every key below the directory path has.
func (d *Driver) dirPrefix(path string) string {
	if path == "/" {
		return d.cfg.root
	}
	return d.key(path) + "/"
}

// path maps an object key below the root back to a driver path.
func (d *Driver) path(key string) string {
	return "/" + strings.TrimPrefix(key, d.cfg.root)
}

// stateKey is where the unfinished write at path keeps its state.
func (d *Driver) stateKey(path string) string {
	return d.cfg.root + stateDir + path[1:]
}

func pathErr(op, path string, err error) error {
	return &driver.PathError{Op: op, Path: path, Driver: name, Err: err}
}

// mapErr turns the SDK's not-found answers into driver.ErrNotFound.
func mapErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	if isNotFound(err) {
		return pathErr(op, path, fmt.Errorf("%w: %w", driver.ErrNotFound, err))
	}
	return pathErr(op, path, err)
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nsu *types.NoSuchUpload
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &nsu) {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Reader implements driver.Driver.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, pathErr("reader", path, driver.ErrInvalidOffset)
	}
	r, err := d.openRanges(ctx, d.key(path), offset)
	if err == nil {
		return r, nil
	}
	if apiCode(err) != "InvalidRange" {
		return nil, mapErr("reader", path, err)
	}
	// S3 refuses a range that starts at the end; the driver contract wants
	// an empty reader there and ErrInvalidOffset only past it.
	fi, serr := d.Stat(ctx, path)
	switch {
	case serr != nil:
		return nil, serr
	case !fi.IsDir && offset == fi.Size:
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return nil, pathErr("reader", path, driver.ErrInvalidOffset)
}

// Stat implements driver.Driver.
func (d *Driver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if path != "/" {
		out, err := d.headObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket, Key: aws.String(d.key(path))})
		if err == nil {
			return driver.FileInfo{Path: path, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
		}
		if !isNotFound(err) {
			return driver.FileInfo{}, mapErr("stat", path, err)
		}
	}
	out, err := d.listObjects(ctx, &s3.ListObjectsV2Input{
		Bucket: d.bucket, Prefix: aws.String(d.dirPrefix(path)), MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return driver.FileInfo{}, mapErr("stat", path, err)
	}
	if len(out.Contents) == 0 && path != "/" {
		return driver.FileInfo{}, pathErr("stat", path, driver.ErrNotFound)
	}
	return driver.FileInfo{Path: path, IsDir: true}, nil
}

// StatFile implements driver.FileStater with the HEAD alone.
func (d *Driver) StatFile(ctx context.Context, path string) (driver.FileInfo, error) {
	if path == "/" {
		return driver.FileInfo{}, pathErr("stat", path, driver.ErrNotFound)
	}
	out, err := d.headObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket, Key: aws.String(d.key(path))})
	if err != nil {
		return driver.FileInfo{}, mapErr("stat", path, err)
	}
	return driver.FileInfo{Path: path, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, dir string) ([]string, error) {
	prefix := d.dirPrefix(dir)
	var children []string
	err := d.listPages(ctx, &s3.ListObjectsV2Input{
		Bucket: d.bucket, Prefix: aws.String(prefix), Delimiter: aws.String("/"),
	}, func(page *s3.ListObjectsV2Output) error {
		for _, o := range page.Contents {
			if n := strings.TrimPrefix(aws.ToString(o.Key), prefix); validName(n) {
				children = append(children, driver.Join(dir, n))
			}
		}
		for _, p := range page.CommonPrefixes {
			n := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), prefix), "/")
			if validName(n) {
				children = append(children, driver.Join(dir, n))
			}
		}
		return nil
	})
	if err != nil {
		return nil, mapErr("list", dir, err)
	}
	if len(children) == 0 && dir != "/" {
		return nil, pathErr("list", dir, driver.ErrNotFound)
	}
	return children, nil
}

// validName reports whether a key component is one a driver path can hold;
// anything else (the state directory, "dir/" markers from consoles, objects
// written by other tools) is not Berth's and stays hidden.
func validName(n string) bool {
	return n != "" && driver.ValidPath("/"+n)
}

// PutContent implements driver.ContentPutter with one PUT.
func (d *Driver) PutContent(ctx context.Context, path string, content []byte) error {
	in := &s3.PutObjectInput{
		Bucket: d.bucket, Key: aws.String(d.key(path)),
		Body: bytes.NewReader(content), ContentLength: aws.Int64(int64(len(content))),
		ContentType: aws.String("application/octet-stream"),
	}
	d.putOptions(in)
	_, err := d.putObject(ctx, in)
	return mapErr("putcontent", path, err)
}

// Create implements driver.Creator with a conditional PUT (If-None-Match:
// *): S3 answers 412 when the key exists, and 409 to the losers of a race
// between conditional writes of one key.
func (d *Driver) Create(ctx context.Context, path string, content []byte) error {
	in := &s3.PutObjectInput{
		Bucket: d.bucket, Key: aws.String(d.key(path)),
		Body: bytes.NewReader(content), ContentLength: aws.Int64(int64(len(content))),
		ContentType: aws.String("application/octet-stream"),
		IfNoneMatch: aws.String("*"),
	}
	d.putOptions(in)
	_, err := d.putObject(ctx, in)
	var re *awshttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() == http.StatusPreconditionFailed || re.HTTPStatusCode() == http.StatusConflict) {
		return pathErr("create", path, driver.ErrExist)
	}
	return mapErr("create", path, err)
}

// putOptions sets what every stored object carries: encryption, storage
// class and ACL.
func (d *Driver) putOptions(in *s3.PutObjectInput) {
	in.ServerSideEncryption, in.SSEKMSKeyId = d.sse()
	in.StorageClass = d.cfg.storageClass
	in.ACL = d.cfg.acl
}

func (d *Driver) sse() (types.ServerSideEncryption, *string) {
	switch {
	case !d.cfg.Encrypt:
		return "", nil
	case d.cfg.KeyID != "":
		return types.ServerSideEncryptionAwsKms, aws.String(d.cfg.KeyID)
	}
	return types.ServerSideEncryptionAes256, nil
}

// RedirectURL implements driver.Redirector with a presigned GET (or HEAD).
func (d *Driver) RedirectURL(r *http.Request, path string) (string, error) {
	key := aws.String(d.key(path))
	expires := s3.WithPresignExpires(d.cfg.redirectExpiry)
	var (
		req *v4.PresignedHTTPRequest
		err error
	)
	switch r.Method {
	case http.MethodGet:
		req, err = d.presign.PresignGetObject(r.Context(), &s3.GetObjectInput{Bucket: d.bucket, Key: key}, expires)
	case http.MethodHead:
		req, err = d.presign.PresignHeadObject(r.Context(), &s3.HeadObjectInput{Bucket: d.bucket, Key: key}, expires)
	default:
		return "", nil
	}
	if err != nil {
		return "", pathErr("redirect", path, err)
	}
	return req.URL, nil
}

// slogLogger hands the SDK's request logs (loglevel) to slog.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Logf(c logging.Classification, format string, v ...any) {
	lvl := slog.LevelDebug
	if c == logging.Warn {
		lvl = slog.LevelWarn
	}
	s.l.Log(context.Background(), lvl, "s3 sdk", "detail", fmt.Sprintf(format, v...))
}

// PartSize implements driver.PartSizer: a Close keeps up to one part in a
// state object that the next writer sends again.
func (d *Driver) PartSize() int64 { return d.cfg.chunkSize }
