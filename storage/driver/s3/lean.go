package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// lean sends the driver's hottest requests (HEAD, GET, PUT and DELETE of
// one object) on net/http, signed with the SDK's own SigV4 signer and
// credentials, to the endpoint the SDK's rules resolved once for the
// bucket, through the SDK's HTTP client, retried by the SDK's retryer.
// The SDK's middleware stack costs such a request several times the client
// CPU of the request itself (and deepens every request goroutine's stack);
// a registry sends hundreds of them per push. Every other request, and
// these when the driver logs requests or the endpoint needs more than
// SigV4 (S3 Express), goes through the SDK.
//
// Outputs hold only what the driver reads: sizes, times, ETag, range,
// metadata and body. Errors are the SDK's types (an *awshttp.ResponseError
// around a smithy.APIError), so mapErr, apiCode and the retryer read them
// as they read the SDK's.
type lean struct {
	client  aws.HTTPClient
	creds   aws.CredentialsProvider
	signer  *v4.Signer
	retryer aws.RetryerV2
	ua      string // User-Agent, as the SDK's requests send it
	region  string // signing region
	base    string // the bucket's URL: scheme, host and path, no trailing '/'
	https   bool
	// The fields of the SDK's inputs each request sends (objects.go,
	// leanlist.go), and of a batch delete's list (types.Delete).
	keyIn, getIn, putIn, copyIn, listIn, deleteIn, deleteList *fieldSet
	// skew is how far the store's clock is ahead of this host's, as its
	// answers last showed when they refused a signature for it
	// (nanoseconds); signatures are dated by the store's clock.
	skew atomic.Int64
}

// emptySHA256 is the payload hash of a request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// continueThreshold is the body size from which a PUT asks for 100-continue,
// as the SDK's PutObject does (2 MiB).
const continueThreshold = 2 << 20

// newLean resolves the bucket's endpoint with the client's options once. It
// returns nil when a request needs what lean does not do, or when the rules
// refuse the configuration.
func newLean(ctx context.Context, c *s3.Client, bucket, ua string) *lean {
	o := c.Options()
	if o.Credentials == nil {
		return nil // anonymous: the SDK sends unsigned requests
	}
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, s3.EndpointParameters{
		Bucket:                         aws.String(bucket),
		Region:                         aws.String(o.Region),
		UseFIPS:                        aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack:                   aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		Endpoint:                       o.BaseEndpoint,
		ForcePathStyle:                 aws.Bool(o.UsePathStyle),
		Accelerate:                     aws.Bool(o.UseAccelerate),
		DisableMultiRegionAccessPoints: aws.Bool(o.DisableMultiRegionAccessPoints),
		UseArnRegion:                   aws.Bool(o.UseARNRegion),
		DisableS3ExpressSessionAuth:    o.DisableS3ExpressSessionAuth,
	})
	if err != nil || len(ep.Headers) > 0 {
		return nil
	}
	region := o.Region
	opts, _ := smithyauth.GetAuthOptions(&ep.Properties)
	if len(opts) > 0 {
		// The first scheme is the one the SDK signs with; the rules name
		// SigV4 "sigv4" (sigv4a and sigv4-s3express are left to the SDK).
		id := opts[0].SchemeID
		if name, _ := smithyhttp.GetSigV4SigningName(&opts[0].SignerProperties); id != "sigv4" && id != smithyauth.SchemeIDSigV4 || name != "s3" {
			return nil
		}
		if r, ok := smithyhttp.GetSigV4SigningRegion(&opts[0].SignerProperties); ok {
			region = r
		}
	}
	u := ep.URI
	if o.EndpointOptions.DisableHTTPS {
		u.Scheme = "http" // as the SDK's disableHTTPS step does
	}
	retryer, ok := o.Retryer.(aws.RetryerV2)
	if !ok {
		return nil
	}
	return &lean{
		client: o.HTTPClient,
		creds:  o.Credentials,
		// As the SDK signs for S3: the key is escaped once, not twice.
		signer:  v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true }),
		retryer: retryer,
		ua:      ua,
		region:  region,
		base:    strings.TrimSuffix(u.String(), "/"),
		https:   u.Scheme == "https",
		keyIn:   fields("Bucket", "Key"),
		getIn:   fields("Bucket", "Key", "Range", "IfMatch"),
		putIn: fields("Bucket", "Key", "Body", "ContentLength", "ContentType", "IfNoneMatch", "Metadata",
			"ServerSideEncryption", "SSEKMSKeyId", "StorageClass", "ACL"),
		copyIn: fields("Bucket", "Key", "CopySource", "ContentType", "MetadataDirective",
			"ServerSideEncryption", "SSEKMSKeyId", "StorageClass", "ACL"),
		listIn:     fields("Bucket", "Prefix", "Delimiter", "MaxKeys", "ContinuationToken", "StartAfter"),
		deleteIn:   fields("Bucket", "Delete"),
		deleteList: fields("Objects", "Quiet"),
	}
}

// call is one request: method on key with headers and body (nil or not
// yet read), which it sends again (a new reader on body each time) as the
// retryer decides. It returns the response of a 2xx answer, its body open.
func (l *lean) call(ctx context.Context, method, key string, header http.Header, body *bytes.Reader) (*http.Response, error) {
	return l.callQuery(ctx, method, key, "", header, body)
}

// callQuery is call with a query string (encoded, without '?'): a
// bucket's listing, a batch delete.
func (l *lean) callQuery(ctx context.Context, method, key, query string, header http.Header, body *bytes.Reader) (*http.Response, error) {
	hash := emptySHA256
	switch {
	case body == nil || body.Size() == 0:
	case l.https:
		hash = "UNSIGNED-PAYLOAD" // TLS protects the body, as the SDK decides
	default:
		// Over plain HTTP the body is signed too (a team decision).
		// WriteTo hands the reader's own bytes to the hash, unbuffered;
		// the attempts read the body at offsets, not from this position.
		sum := sha256.New()
		if _, err := body.WriteTo(sum); err != nil {
			return nil, err
		}
		hash = hex.EncodeToString(sum.Sum(nil))
	}
	path := "/" + key
	u := l.base + httpbinding.EscapePath(path, false)
	if key == "" && strings.Count(l.base, "/") > 2 {
		// The bucket itself, path-style: "/bucket", as the SDK sends it.
		u = l.base
	}
	if query != "" {
		u += "?" + query
	}
	// The retry quota's token of a retry is given back by the outcome of
	// the attempt it paid for, as the SDK's retry step does.
	releaseRetry := func(error) error { return nil }
	for attempt := 1; ; attempt++ {
		release, err := l.retryer.GetAttemptToken(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := l.attempt(ctx, method, u, header, body, hash)
		_ = releaseRetry(err)
		_ = release(err)
		if err == nil {
			return resp, nil
		}
		if !l.retryer.IsErrorRetryable(err) {
			return nil, err
		}
		if max := l.retryer.MaxAttempts(); max > 0 && attempt >= max {
			return nil, fmt.Errorf("after %d attempts: %w", attempt, err)
		}
		var terr error
		if releaseRetry, terr = l.retryer.GetRetryToken(ctx, err); terr != nil {
			return nil, err // the retry quota is spent
		}
		delay, derr := l.retryer.RetryDelay(attempt, err)
		if derr != nil {
			return nil, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (retrying %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

func (l *lean) attempt(ctx context.Context, method, u string, header http.Header, body *bytes.Reader, hash string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil && body.Size() > 0 {
		open := func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(body, 0, body.Size())), nil }
		req.Body, _ = open()
		req.GetBody = open // the transport sends it again on a dead kept-alive connection
		req.ContentLength = body.Size()
		if body.Size() >= continueThreshold {
			req.Header.Set("Expect", "100-continue")
		}
	}
	// Without it Go's transport asks for gzip and unpacks it, and the
	// lengths and ranges of objects stored compressed would be wrong.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", l.ua)
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds, err := l.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3: credentials: %w", err)
	}
	skew := time.Duration(l.skew.Load())
	if err := l.signer.SignHTTP(ctx, creds, req, hash, "s3", l.region, time.Now().Add(skew)); err != nil {
		return nil, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, &smithyhttp.RequestSendError{Err: err}
	}
	if resp.StatusCode/100 == 2 && header.Get("X-Amz-Copy-Source") != "" {
		// A copy that fails once it began answers 200 with an error for
		// its body; as the SDK does, that is a 500.
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if err != nil {
			return nil, &smithyhttp.RequestSendError{Err: err}
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		var root struct{ XMLName xml.Name }
		if xml.Unmarshal(b, &root) == nil && strings.EqualFold(root.XMLName.Local, "Error") {
			resp.StatusCode = http.StatusInternalServerError
		}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, l.skewed(responseError(resp), resp.Header.Get("Date"), skew)
}

// skewThreshold is the clock difference from which a refused signature is
// put down to the clock, as the SDK's retry step does.
const skewThreshold = 4 * time.Minute

// skewed tells a signature refused for a wrong clock from other errors,
// as the SDK's retry step does: when err has one of the codes S3 answers a
// request dated too far from its clock with, and the store's Date differs
// from the time the request was signed for by more than skewThreshold, the
// skew is remembered for the next signatures and err made retryable.
func (l *lean) skewed(err error, date string, signedSkew time.Duration) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode() {
	case "RequestTimeTooSkewed", "SignatureDoesNotMatch", "InvalidSignatureException", "AuthFailure", "AccessDeniedException":
	default:
		return err
	}
	server, perr := http.ParseTime(date)
	if perr != nil {
		return err
	}
	skew := time.Until(server)
	if d := skew - signedSkew; d > -skewThreshold && d < skewThreshold {
		return err
	}
	l.skew.Store(int64(skew))
	return &clockSkewError{err}
}

// clockSkewError is an error the retryer retries: the next attempt is
// signed for the store's clock.
type clockSkewError struct{ error }

func (e *clockSkewError) Unwrap() error        { return e.error }
func (e *clockSkewError) RetryableError() bool { return true }

// responseError reads an S3 error answer as the SDK does: code and message
// from the XML body, or from the status when there is none (HEAD).
func responseError(resp *http.Response) error {
	var e struct {
		Code      string `xml:"Code"`
		Message   string `xml:"Message"`
		RequestID string `xml:"RequestId"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if len(bytes.TrimSpace(body)) > 0 {
		_ = xml.Unmarshal(body, &e)
	}
	if e.Code == "" && e.Message == "" {
		text := http.StatusText(resp.StatusCode)
		e.Code, e.Message = strings.ReplaceAll(text, " ", ""), text
	}
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("X-Amz-Request-Id")
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: resp},
			Err:      &smithy.GenericAPIError{Code: e.Code, Message: e.Message},
		},
		RequestID: e.RequestID,
	}
}

// opErr wraps err as the SDK wraps the errors of an operation.
func opErr(op string, err error) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: op, Err: err}
}

// fieldSet names the fields of an SDK input that lean sends: an input
// with any other field set goes through the SDK. Which fields those are is
// worked out once per input type: naming a struct's fields through
// reflect allocates for each, and every lean request asks.
type fieldSet struct {
	names []string
	other sync.Map // reflect.Type → []int, the indexes of its exported fields not in names
}

func fields(names ...string) *fieldSet { return &fieldSet{names: names} }

// only reports whether in, a pointer to an input struct, has no field set
// but those of s.
func (s *fieldSet) only(in any) bool {
	v := reflect.ValueOf(in).Elem()
	for _, i := range s.others(v.Type()) {
		if !v.Field(i).IsZero() {
			return false
		}
	}
	return true
}

func (s *fieldSet) others(t reflect.Type) []int {
	if idx, ok := s.other.Load(t); ok {
		return idx.([]int)
	}
	var idx []int
	for i := range t.NumField() {
		f := t.Field(i)
		if f.IsExported() && !slices.Contains(s.names, f.Name) {
			idx = append(idx, i)
		}
	}
	s.other.Store(t, idx)
	return idx
}

// objectHeaders reads what the driver uses of an object's answer.
func objectHeaders(h http.Header) (size *int64, modTime *time.Time, etag *string, meta map[string]string) {
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil {
		size = &n
	}
	if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		modTime = &t
	}
	if v := h.Get("ETag"); v != "" {
		etag = &v
	}
	for k, v := range h {
		if len(k) > len("X-Amz-Meta-") && strings.EqualFold(k[:len("X-Amz-Meta-")], "X-Amz-Meta-") && len(v) > 0 {
			if meta == nil {
				meta = map[string]string{}
			}
			meta[strings.ToLower(k[len("X-Amz-Meta-"):])] = strings.TrimSpace(v[0])
		}
	}
	return size, modTime, etag, meta
}
