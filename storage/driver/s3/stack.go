package s3

import (
	"context"
	"runtime"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyauth "github.com/aws/smithy-go/auth"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The SDK builds a stack of about forty middlewares for every request and
// runs each of them. Through a registry push each S3 request cost several
// times the client CPU of the same request on bare net/http, most of it in
// that stack. trimStack takes out the steps that do nothing for Berth's
// requests, and cachedEndpoints evaluates the endpoint rules once per
// bucket instead of once per request. What stays: retries with backoff,
// SigV4 signing and payload hashing, the checksums S3 requires, clock skew
// correction, the 200-with-error handling of CopyObject and
// CompleteMultipartUpload, request ids in errors, endpoint resolution
// (custom endpoints, path and virtual-host style, dual-stack, FIPS,
// acceleration, ARNs and S3 Express through the rules).

// The middlewares removed from every stack, by step.
var (
	unusedInitialize = []string{
		// Finds an ARN in the bucket for the legacy endpoint resolver's
		// middlewares below; the rules of the resolver Berth uses parse
		// an ARN bucket themselves.
		"S3Shared:ARNLookup",
	}
	unusedSerialize = []string{
		// The legacy (v1) endpoint resolver and its customizations: each
		// returns at once unless a v1 EndpointResolver is configured,
		// which Berth never does (New sets BaseEndpoint).
		"ResolveEndpoint",
		"S3:ProcessARNResource",
		"S3:ObjectLambdaEndpoint",
		"S3:UpdateEndpoint",
		"S3:RemoveBucketFromPathMiddleware",
		"serializeImmutableHostnameBucket",
		// Adds a feature flag to the User-Agent for S3 Express buckets;
		// the User-Agent is fixed (see trimStack).
		"isExpressUserAgent",
	}
	unusedBuild = []string{
		// amz-sdk-invocation-id: a random UUID per call, for the SDK's
		// own telemetry; S3 ignores it.
		"ClientRequestID",
		// Sets X-Amzn-Trace-Id from the environment of an AWS Lambda
		// function; Berth does not run in one.
		"RecursionDetection",
		// Feature flags for the User-Agent.
		"AWSChecksum:RequestMetricsTracking",
		"AWSChecksum:ResponseMetricsTracking",
	}
	unusedFinalize = []string{
		// Call interceptors, of which Berth configures none.
		"InterceptBeforeRetryLoop",
		"InterceptAttempt",
	}
)

// trimStack returns the API option that removes unusedSteps from every
// operation's stack, and the logging step when the SDK logs nothing. It
// replaces the User-Agent the SDK builds anew for each request (from its
// version, the platform, the operation's features, sorted) with ua, built
// once.
func trimStack(ua string, logging bool) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		// A middleware absent from this operation's stack is no error.
		for _, id := range unusedInitialize {
			_, _ = s.Initialize.Remove(id)
		}
		for _, id := range unusedSerialize {
			_, _ = s.Serialize.Remove(id)
		}
		for _, id := range unusedBuild {
			_, _ = s.Build.Remove(id)
		}
		for _, id := range unusedFinalize {
			_, _ = s.Finalize.Remove(id)
		}
		if !logging {
			_, _ = s.Deserialize.Remove("RequestResponseLogger")
		}
		// Presigning removed the User-Agent already: a presigned URL
		// carries none.
		if _, err := s.Build.Remove("UserAgent"); err == nil {
			return s.Build.Add(userAgent(ua), middleware.After)
		}
		return nil
	}
}

// sdkUserAgent is the start of the User-Agent Berth sends to S3: the SDK
// and the platform, as the SDK's own starts.
func sdkUserAgent(extra string) string {
	ua := "aws-sdk-go-v2/" + aws.SDKVersion + " os/" + runtime.GOOS + " lang/go#" + runtime.Version()
	if extra != "" {
		ua += " " + extra
	}
	return ua
}

// userAgent sets the User-Agent header of each request to itself.
type userAgent string

// ID is not the SDK's "UserAgent": paginators and waiters look that one up
// to add their feature flag, and fail on another type. Finding none, they
// add the SDK's, which puts its User-Agent before this one on those calls.
func (userAgent) ID() string { return "BerthUserAgent" }

func (u userAgent) HandleBuild(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (
	middleware.BuildOutput, middleware.Metadata, error,
) {
	if req, ok := in.Request.(*smithyhttp.Request); ok {
		req.Header["User-Agent"] = []string{string(u)}
	}
	return next.HandleBuild(ctx, in)
}

// cachedEndpoints resolves each distinct set of endpoint parameters once
// through the SDK's resolver and answers the same set from memory after.
// The S3 rules do not read the object key, prefix or copy source, so all
// requests on one bucket share one entry; a driver has a handful.
type cachedEndpoints struct {
	next s3.EndpointResolverV2
	mu   sync.Mutex
	m    map[endpointKey]smithyendpoints.Endpoint
}

// maxCachedEndpoints bounds the cache; past it, answers are not kept.
const maxCachedEndpoints = 64

func newCachedEndpoints(next s3.EndpointResolverV2) *cachedEndpoints {
	return &cachedEndpoints{next: next, m: make(map[endpointKey]smithyendpoints.Endpoint)}
}

// ResolveEndpoint implements s3.EndpointResolverV2. Each caller gets its
// own copy of the cached endpoint's headers, properties and auth options:
// the SDK writes them (its auth resolver rebases each auth option's
// properties, its endpoint step sets the endpoint's signer properties into
// the resolved scheme's, which is the same map), and concurrent requests
// sharing one endpoint raced on those maps.
func (c *cachedEndpoints) ResolveEndpoint(ctx context.Context, p s3.EndpointParameters) (smithyendpoints.Endpoint, error) {
	k := keyOf(p)
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return cloneEndpoint(e), nil
	}
	e, err := c.next.ResolveEndpoint(ctx, p)
	if err != nil {
		return e, err
	}
	c.mu.Lock()
	if len(c.m) < maxCachedEndpoints {
		c.m[k] = cloneEndpoint(e)
	}
	c.mu.Unlock()
	return e, nil
}

// cloneEndpoint copies e down to what the SDK may write: its headers, its
// property set and the auth options in it, with their property sets.
func cloneEndpoint(e smithyendpoints.Endpoint) smithyendpoints.Endpoint {
	out := smithyendpoints.Endpoint{URI: e.URI, Headers: e.Headers.Clone()}
	out.Properties.SetAll(&e.Properties)
	if opts, ok := smithyauth.GetAuthOptions(&e.Properties); ok {
		copies := make([]*smithyauth.Option, len(opts))
		for i, o := range opts {
			c := &smithyauth.Option{SchemeID: o.SchemeID}
			c.IdentityProperties.SetAll(&o.IdentityProperties)
			c.SignerProperties.SetAll(&o.SignerProperties)
			copies[i] = c
		}
		smithyauth.SetAuthOptions(&out.Properties, copies)
	}
	return out
}

// endpointKey is every field of s3.EndpointParameters the rules read, by
// value (TestEndpointKeyCoversParameters checks the list against the SDK's).
type endpointKey struct {
	bucket, region, endpoint opt[string]

	useFIPS, useDualStack, forcePathStyle, accelerate, useGlobalEndpoint,
	useObjectLambdaEndpoint, disableAccessPoints, disableMultiRegionAccessPoints,
	useArnRegion, useS3ExpressControlEndpoint, disableS3ExpressSessionAuth opt[bool]
}

// opt is an optional parameter's value: unset differs from the zero value.
type opt[T comparable] struct {
	set bool
	v   T
}

func optOf[T comparable](p *T) opt[T] {
	if p == nil {
		return opt[T]{}
	}
	return opt[T]{true, *p}
}

// endpointFieldsIgnored are the parameters the S3 rules do not read.
var endpointFieldsIgnored = []string{"Key", "Prefix", "CopySource"}

func keyOf(p s3.EndpointParameters) endpointKey {
	return endpointKey{
		bucket: optOf(p.Bucket), region: optOf(p.Region), endpoint: optOf(p.Endpoint),
		useFIPS: optOf(p.UseFIPS), useDualStack: optOf(p.UseDualStack),
		forcePathStyle: optOf(p.ForcePathStyle), accelerate: optOf(p.Accelerate),
		useGlobalEndpoint:              optOf(p.UseGlobalEndpoint),
		useObjectLambdaEndpoint:        optOf(p.UseObjectLambdaEndpoint),
		disableAccessPoints:            optOf(p.DisableAccessPoints),
		disableMultiRegionAccessPoints: optOf(p.DisableMultiRegionAccessPoints),
		useArnRegion:                   optOf(p.UseArnRegion),
		useS3ExpressControlEndpoint:    optOf(p.UseS3ExpressControlEndpoint),
		disableS3ExpressSessionAuth:    optOf(p.DisableS3ExpressSessionAuth),
	}
}
