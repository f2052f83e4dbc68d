package s3

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-registry/berth/storage/driver"
)

// TestEndpointKeyCoversParameters: the endpoint cache's key holds every
// parameter of the SDK's but those the rules ignore, so an SDK update that
// adds one fails here instead of sharing endpoints it must not.
func TestEndpointKeyCoversParameters(t *testing.T) {
	var params []string
	pt := reflect.TypeFor[s3.EndpointParameters]()
	for f := range pt.Fields() {
		if !slices.Contains(endpointFieldsIgnored, f.Name) {
			params = append(params, strings.ToLower(f.Name))
		}
	}
	var keys []string
	for f := range reflect.TypeFor[endpointKey]().Fields() {
		keys = append(keys, strings.ToLower(f.Name))
	}
	slices.Sort(params)
	slices.Sort(keys)
	if !slices.Equal(params, keys) {
		t.Errorf("endpointKey has %v, the SDK's parameters the rules read are %v", keys, params)
	}
}

// TestTrimmedStackSends: with the trimmed stack, requests carry the
// configured User-Agent and none of the SDK's telemetry headers, and the
// SDK's requests still work against MinIO.
func TestTrimmedStackSends(t *testing.T) {
	s := newStore(t)
	var (
		mu      sync.Mutex
		agents  []string
		headers []string
	)
	url := minioProxy(t, s.m.Endpoint, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		agents = append(agents, r.Header.Get("User-Agent"))
		for _, h := range []string{"Amz-Sdk-Invocation-Id", "X-Amzn-Trace-Id"} {
			if r.Header.Get(h) != "" {
				headers = append(headers, h)
			}
		}
		mu.Unlock()
		next.ServeHTTP(w, r)
	})
	d := s.through(t, url, driver.Params{"useragent": "berth-test/1"})
	ctx := context.Background()
	if err := d.PutContent(ctx, "/a/b", []byte("data")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d, "/a/b"); string(got) != "data" {
		t.Fatalf("read %q", got)
	}
	if err := d.Delete(ctx, "/a"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(agents) < 3 {
		t.Fatalf("%d requests seen", len(agents))
	}
	for _, a := range agents {
		if !strings.HasPrefix(a, "aws-sdk-go-v2/") || !strings.HasSuffix(a, " berth-test/1") {
			t.Errorf("User-Agent %q, want the SDK's and the configured one", a)
		}
	}
	if len(headers) > 0 {
		t.Errorf("requests carried %v", headers)
	}
}

// TestCachedEndpointsAnswerAsTheRules: the cache answers each set of
// parameters as the SDK's rules do, by path and by virtual host, and keeps
// apart what differs.
func TestCachedEndpointsAnswerAsTheRules(t *testing.T) {
	ctx := context.Background()
	rules := s3.NewDefaultEndpointResolverV2()
	c := newCachedEndpoints(rules)
	str := func(s string) *string { return &s }
	boolp := func(b bool) *bool { return &b }
	for _, p := range []s3.EndpointParameters{
		{Bucket: str("one"), Region: str("us-east-1"), Endpoint: str("https://s3.example.com"), ForcePathStyle: boolp(true), Key: str("a")},
		{Bucket: str("one"), Region: str("us-east-1"), Endpoint: str("https://s3.example.com"), ForcePathStyle: boolp(false), Key: str("b")},
		{Bucket: str("two"), Region: str("us-east-1"), Endpoint: str("https://s3.example.com"), ForcePathStyle: boolp(false), Key: str("a")},
		{Bucket: str("one"), Region: str("eu-west-1"), Key: str("a")},
		{Bucket: str("one"), Region: str("eu-west-1"), UseDualStack: boolp(true), Key: str("a")},
		{Bucket: str("one"), Region: str("us-east-1"), Endpoint: str("https://s3.example.com"), ForcePathStyle: boolp(true), Key: str("other")},
	} {
		for range 2 { // the first resolves, the second comes from the cache
			want, err := rules.ResolveEndpoint(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.ResolveEndpoint(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if got.URI.String() != want.URI.String() || !reflect.DeepEqual(got.Headers, want.Headers) {
				t.Errorf("%s %v: cached %s, rules %s", *p.Bucket, keyOf(p), got.URI.String(), want.URI.String())
			}
		}
	}
	if n := len(c.m); n != 5 {
		t.Errorf("%d endpoints cached, want 5 (the key is no part of one)", n)
	}
}
