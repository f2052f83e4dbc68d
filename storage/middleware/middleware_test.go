package middleware

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
)

const blobPath = "/docker/registry/v2/blobs/sha256/ab/abcdef/data"

// bucket is a driver with what the s3 driver adds: object keys under a
// root, and presigned URLs of its own.
type bucket struct {
	driver.Driver
}

func (bucket) ObjectKey(p string) string { return "root/" + p[1:] }
func (bucket) RedirectURL(_ *http.Request, p string) (string, error) {
	return "http://127.0.0.1:9000/bucket/root" + p + "?X-Amz-Signature=a%2Fb", nil
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func apply(t *testing.T, d driver.Driver, specs ...Spec) driver.Driver {
	t.Helper()
	d, err := Apply(t.Context(), driver.Wrap(d), specs, discard())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func redirectURL(t *testing.T, d driver.Driver, remote string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/v2/a/blobs/sha256:abcdef", nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	u, err := d.(driver.Redirector).RedirectURL(r, blobPath)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestRedirectAndRewriteURLs(t *testing.T) {
	tests := []struct {
		name  string
		d     driver.Driver
		specs []Spec
		want  string
	}{
		{"redirect to a host", inmemory.New(), []Spec{{Name: "redirect", Options: map[string]any{"baseurl": "https://cdn.example.com"}}},
			"https://cdn.example.com" + blobPath},
		{"redirect below a path", inmemory.New(), []Spec{{Name: "redirect", Options: map[string]any{"baseurl": "http://files.example.com:8080/registry/"}}},
			"http://files.example.com:8080/registry" + blobPath},
		{"redirect replaces the driver's own", bucket{inmemory.New()}, []Spec{{Name: "redirect", Options: map[string]any{"baseurl": "https://cdn.example.com"}}},
			"https://cdn.example.com" + blobPath},
		{"rewrite the driver's scheme and host", bucket{inmemory.New()}, []Spec{{Name: "rewrite", Options: map[string]any{"scheme": "https", "host": "s3.internal:443"}}},
			"https://s3.internal:443/bucket/root" + blobPath + "?X-Amz-Signature=a%2Fb"},
		{"rewrite trims a prefix", bucket{inmemory.New()}, []Spec{{Name: "rewrite", Options: map[string]any{"trimpathprefix": "/bucket"}}},
			"http://127.0.0.1:9000/root" + blobPath + "?X-Amz-Signature=a%2Fb"},
		{"rewrite without a driver URL serves the blob", inmemory.New(), []Spec{{Name: "rewrite", Options: map[string]any{"host": "x.example.com"}}},
			""},
		{"rewrite what redirect made", inmemory.New(), []Spec{
			{Name: "redirect", Options: map[string]any{"baseurl": "http://cdn.example.com/base"}},
			{Name: "rewrite", Options: map[string]any{"scheme": "https", "trimpathprefix": "/base"}},
		}, "https://cdn.example.com" + blobPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redirectURL(t, apply(t, tt.d, tt.specs...), ""); got != tt.want {
				t.Fatalf("redirect URL\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestApplyRefusesWhatItCannotUse(t *testing.T) {
	key := writeKey(t)
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"unknown name", Spec{Key: "middleware.storage[1]", Name: "cloudflare"},
			`middleware.storage[1]: unknown storage middleware "cloudflare" (Berth has cloudfront, redirect, rewrite)`},
		{"redirect without baseurl", Spec{Name: "redirect"}, "options.baseurl: required"},
		{"redirect to a relative URL", Spec{Name: "redirect", Options: map[string]any{"baseurl": "/files"}}, "options.baseurl: expected an absolute URL"},
		{"unknown option", Spec{Name: "rewrite", Options: map[string]any{"trimprefix": "/x"}}, "options.trimprefix: unknown key"},
		{"cloudfront without a key", Spec{Name: "cloudfront", Options: map[string]any{"baseurl": "d1.cloudfront.net"}},
			"options.privatekey, options.keypairid: required"},
		{"cloudfront with a bad filter", Spec{Name: "cloudfront", Options: map[string]any{"baseurl": "d1.cloudfront.net", "privatekey": key, "keypairid": "K", "ipfilteredby": "gcp"}},
			`options.ipfilteredby: "gcp" is not one of none, aws, awsregion`},
		{"cloudfront by region without regions", Spec{Name: "cloudfront", Options: map[string]any{"baseurl": "d1.cloudfront.net", "privatekey": key, "keypairid": "K", "ipfilteredby": "awsregion"}},
			"options.awsregion: required"},
		{"cloudfront with a key that is not one", Spec{Name: "cloudfront", Options: map[string]any{"baseurl": "d1.cloudfront.net", "privatekey": "/dev/null", "keypairid": "K"}},
			"options.privatekey: /dev/null holds no PEM block"},
		{"cloudfront with a missing key file", Spec{Name: "cloudfront", Options: map[string]any{"baseurl": "d1.cloudfront.net", "privatekey": "/nonexistent/pk.pem", "keypairid": "K"}},
			"options.privatekey: open /nonexistent/pk.pem"},
		{"cloudfront without keypairid", Spec{Name: "cloudfront", Options: map[string]any{"baseurl": "d1.cloudfront.net", "privatekey": key}},
			"options.keypairid: required"},
		{"cloudfront with a baseurl that is no URL", Spec{Name: "cloudfront", Options: map[string]any{"baseurl": "https://", "privatekey": key, "keypairid": "K"}},
			"options.baseurl: expected a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply(t.Context(), driver.Wrap(bucket{inmemory.New()}), []Spec{tt.spec}, discard())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply: error %v, want it to contain %q", err, tt.want)
			}
			// Check, which config check runs, refuses the same way.
			cerr := Check([]Spec{tt.spec}, discard())
			if cerr == nil || cerr.Error() != err.Error() {
				t.Fatalf("Check: error %v, want Apply's %v", cerr, err)
			}
		})
	}
}

// TestCheckFetchesNothing: Check accepts good options and, unlike
// Apply, does not fetch the AWS address ranges (config check needs no
// network).
func TestCheckFetchesNothing(t *testing.T) {
	var fetched atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetched.Add(1)
		w.Write([]byte(`{"prefixes":[]}`))
	}))
	defer srv.Close()
	specs := []Spec{
		cloudFrontSpec(writeKey(t), map[string]any{"ipfilteredby": "aws", "iprangesurl": srv.URL}),
		{Name: "redirect", Options: map[string]any{"baseurl": "https://cdn.example.com/r"}},
		{Name: "rewrite", Options: map[string]any{"host": "blobs.example.com"}},
	}
	if err := Check(specs, discard()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if n := fetched.Load(); n != 0 {
		t.Fatalf("Check fetched the AWS address ranges %d times", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if _, err := Apply(ctx, driver.Wrap(bucket{inmemory.New()}), specs, discard()); err != nil {
		t.Fatal(err)
	}
	if fetched.Load() == 0 {
		t.Fatal("Apply did not fetch the address ranges: the test proves nothing")
	}
}

// testKey is generated once: RSA key generation is slow.
var testKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func writeKey(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pk-APKAEXAMPLE.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey)})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// verifyCloudFront checks u is the signed URL of resource with a canned
// policy expiring at exp, signed by the test key's public half.
func verifyCloudFront(t *testing.T, u, resource string, exp time.Time) {
	t.Helper()
	wantPrefix := resource + "?Expires=" + fmt.Sprint(exp.Unix()) + "&Key-Pair-Id=APKAEXAMPLE&Signature="
	if !strings.HasPrefix(u, wantPrefix) {
		t.Fatalf("signed URL\n got %s\nwant %s…", u, wantPrefix)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	sig := parsed.Query().Get("Signature")
	if strings.ContainsAny(sig, "+=/") {
		t.Fatalf("signature %q has characters CloudFront does not take", sig)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.NewReplacer("-", "+", "_", "=", "~", "/").Replace(sig))
	if err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf(`{"Statement":[{"Resource":"%s","Condition":{"DateLessThan":{"AWS:EpochTime":%d}}}]}`, resource, exp.Unix())
	sum := sha1.Sum([]byte(policy))
	if err := rsa.VerifyPKCS1v15(&testKey.PublicKey, crypto.SHA1, sum[:], raw); err != nil {
		t.Fatalf("signature does not verify with the key pair's public key: %v", err)
	}
}

func cloudFrontSpec(key string, extra map[string]any) Spec {
	opts := map[string]any{"baseurl": "d111111abcdef8.cloudfront.net", "privatekey": key, "keypairid": "APKAEXAMPLE"}
	for k, v := range extra {
		opts[k] = v
	}
	return Spec{Name: "cloudfront", Options: opts}
}

// fixClock sets the clock of the cloudfront middleware in d.
func fixClock(t *testing.T, d driver.Driver, now time.Time) {
	t.Helper()
	cf, ok := driver.RedirectorOf(d).(*cloudFront)
	if !ok {
		t.Fatalf("redirector is %T", driver.RedirectorOf(d))
	}
	cf.now = func() time.Time { return now }
}

func TestCloudFrontSignsURLs(t *testing.T) {
	key := writeKey(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	resource := "https://d111111abcdef8.cloudfront.net/root" + blobPath
	tests := []struct {
		name     string
		extra    map[string]any
		lifetime time.Duration
	}{
		{"default duration", nil, 20 * time.Minute},
		{"configured duration", map[string]any{"duration": "3h"}, 3 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := apply(t, bucket{inmemory.New()}, cloudFrontSpec(key, tt.extra))
			fixClock(t, d, now)
			verifyCloudFront(t, redirectURL(t, d, ""), resource, now.Add(tt.lifetime))
		})
	}
	t.Run("without an object store the driver's own", func(t *testing.T) {
		d := apply(t, inmemory.New(), cloudFrontSpec(key, nil))
		if got := redirectURL(t, d, ""); got != "" {
			t.Fatalf("redirect URL %q, want none", got)
		}
	})
}

// ipRangesServer serves an ip-ranges.json on loopback; set replaces it.
func ipRangesServer(t *testing.T, doc string) (url string, set func(string), fetches *atomic.Int64) {
	t.Helper()
	var cur atomic.Value
	cur.Store(doc)
	fetches = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		fmt.Fprint(w, cur.Load().(string))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func(s string) { cur.Store(s) }, fetches
}

const ranges = `{"prefixes":[
 {"ip_prefix":"203.0.113.0/24","region":"us-east-1","service":"AMAZON"},
 {"ip_prefix":"198.51.100.0/24","region":"eu-west-1","service":"AMAZON"}],
 "ipv6_prefixes":[{"ipv6_prefix":"2001:db8::/32","region":"eu-west-1","service":"AMAZON"}]}`

func TestCloudFrontIPFilter(t *testing.T) {
	key := writeKey(t)
	rangesURL, _, _ := ipRangesServer(t, ranges)
	const s3URL = "http://127.0.0.1:9000/bucket/root" + blobPath + "?X-Amz-Signature=a%2Fb"
	cf := "https://d111111abcdef8.cloudfront.net/"
	tests := []struct {
		name   string
		extra  map[string]any
		remote string
		xff    string
		want   string // s3URL, or cf for a signed CloudFront URL
	}{
		{"none: an AWS client still goes through CloudFront", map[string]any{"ipfilteredby": "none"}, "203.0.113.9:5000", "", cf},
		{"aws: an AWS client goes to S3", map[string]any{"ipfilteredby": "aws"}, "203.0.113.9:5000", "", s3URL},
		{"aws: an IPv6 AWS client goes to S3", map[string]any{"ipfilteredby": "aws"}, "[2001:db8::7]:5000", "", s3URL},
		{"aws: another client goes through CloudFront", map[string]any{"ipfilteredby": "aws"}, "192.0.2.1:5000", "", cf},
		{"aws: the forwarded client counts", map[string]any{"ipfilteredby": "aws"}, "10.0.0.1:5000", "203.0.113.9, 10.0.0.1", s3URL},
		{"awsregion: a listed region goes to S3", map[string]any{"ipfilteredby": "awsregion", "awsregion": "eu-west-1, ap-south-1"}, "198.51.100.4:5000", "", s3URL},
		{"awsregion: another region goes through CloudFront", map[string]any{"ipfilteredby": "awsregion", "awsregion": "eu-west-1"}, "203.0.113.9:5000", "", cf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.extra["iprangesurl"] = rangesURL
			d := apply(t, bucket{inmemory.New()}, cloudFrontSpec(key, tt.extra))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			got, err := d.(driver.Redirector).RedirectURL(r, blobPath)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == cf {
				if !strings.HasPrefix(got, cf+"root"+blobPath+"?Expires=") {
					t.Fatalf("redirect URL %s, want a signed CloudFront URL", got)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("redirect URL %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCloudFrontRefreshesIPRanges(t *testing.T) {
	key := writeKey(t)
	rangesURL, set, _ := ipRangesServer(t, `{"prefixes":[]}`)
	ctx, cancel := context.WithCancel(t.Context())
	d, err := Apply(ctx, driver.Wrap(bucket{inmemory.New()}), []Spec{cloudFrontSpec(key, map[string]any{
		"ipfilteredby": "aws", "iprangesurl": rangesURL, "updatefrequency": "20ms",
	})}, discard())
	if err != nil {
		t.Fatal(err)
	}
	const client = "203.0.113.9:5000"
	if got := redirectURL(t, d, client); strings.HasPrefix(got, "http://127.0.0.1:9000/") {
		t.Fatalf("before the ranges list the client: %s", got)
	}
	set(ranges)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.HasPrefix(redirectURL(t, d, client), "http://127.0.0.1:9000/") {
		if time.Now().After(deadline) {
			t.Fatal("new ranges never taken up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
}

func TestCloudFrontWithoutRangesSendsEveryoneThroughCloudFront(t *testing.T) {
	key := writeKey(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	d := apply(t, bucket{inmemory.New()}, cloudFrontSpec(key, map[string]any{"ipfilteredby": "aws", "iprangesurl": srv.URL}))
	if got := redirectURL(t, d, "203.0.113.9:5000"); !strings.HasPrefix(got, "https://d111111abcdef8.cloudfront.net/") {
		t.Fatalf("redirect URL %s, want CloudFront's", got)
	}
}
