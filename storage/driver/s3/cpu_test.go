package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// BenchmarkRequestCPU measures the client CPU (user + system, from
// getrusage) each kind of request costs against MinIO, through each of the
// driver's ways of sending it (clientVariants) and through bare net/http
// signed with the SDK's v4 signer, as "cpu-µs/op"; with -cpuprofile, where
// it goes. Run it with a fixed count: -benchtime 1000x.
func BenchmarkRequestCPU(b *testing.B) {
	s := newStore(b)
	d := s.driver(b, "", nil)
	ctx := context.Background()
	small := bytes.Repeat([]byte("x"), 1000)
	if err := d.PutContent(ctx, "/small", small); err != nil {
		b.Fatal(err)
	}
	ops := smallOps(ctx, d, small, func(i int) string { return fmt.Sprintf("/put/%d", i) })
	bb := bare{c: &http.Client{}, s: v4.NewSigner(), base: s.m.Endpoint + "/" + s.bucket + "/",
		creds: aws.Credentials{AccessKeyID: s.m.AccessKey, SecretAccessKey: s.m.SecretKey}, region: s.m.Region}
	bareOps := []func(i int) error{
		func(int) error { return bb.do(ctx, http.MethodHead, "small", nil) },
		func(int) error { return bb.do(ctx, http.MethodGet, "small", nil) },
		func(i int) error { return bb.do(ctx, http.MethodPut, fmt.Sprintf("bare/%d", i), small) },
		func(i int) error { return bb.do(ctx, http.MethodDelete, fmt.Sprintf("bare/%d", i), nil) },
	}
	measure := func(b *testing.B, fn func(i int) error) {
		for i := range 20 { // warm the connection pool
			if err := fn(i); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		start, i := cpuTime(b), 0
		for b.Loop() {
			if err := fn(i); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/float64(i), "cpu-µs/op")
	}
	for k, op := range ops {
		for _, v := range clientVariants(d) {
			b.Run(v.name+"/"+op.name, func(b *testing.B) { v.use(d); measure(b, op.fn) })
		}
		b.Run("bare/"+op.name, func(b *testing.B) { measure(b, bareOps[k]) })
	}
}

// cpuTime is the CPU this process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clientVariants are the ways d can send its requests: through the SDK's
// full stack (as before trimStack and the endpoint cache), through the
// trimmed stack, and lean.
func clientVariants(d *Driver) []struct {
	name string
	use  func(*Driver)
} {
	trimmed, fast := d.c, d.lean
	o := d.c.Options()
	o.APIOptions = nil
	o.EndpointResolverV2 = s3.NewDefaultEndpointResolverV2()
	full := s3.New(o)
	return []struct {
		name string
		use  func(*Driver)
	}{
		{"sdk", func(d *Driver) { d.c, d.lean = full, nil }},
		{"trimmed", func(d *Driver) { d.c, d.lean = trimmed, nil }},
		{"lean", func(d *Driver) { d.c, d.lean = trimmed, fast }},
	}
}

// bare sends signed requests with net/http alone, the floor the driver's
// client is measured against.
type bare struct {
	c      *http.Client
	s      *v4.Signer
	base   string
	creds  aws.Credentials
	region string
}

func (b bare) do(ctx context.Context, method, key string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, b.base+key, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body == nil {
		req.Body = nil
	}
	req.ContentLength = int64(len(body))
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := b.s.SignHTTP(ctx, b.creds, req, hash, "s3", b.region, time.Now()); err != nil {
		return err
	}
	resp, err := b.c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s", method, key, resp.Status)
	}
	return nil
}

// canned answers every request as S3 answers a successful one of its
// method, without a network: BenchmarkClientOverhead measures what the
// client alone costs a request.
type canned struct{}

func (canned) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	h := http.Header{}
	h.Set("Last-Modified", "Sun, 06 Dec 2026 23:00:00 GMT")
	h.Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	h.Set("X-Amz-Request-Id", "18A0B0C0D0E0F000")
	resp := &http.Response{StatusCode: http.StatusOK, Header: h, Request: r, Body: http.NoBody, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	switch r.Method {
	case http.MethodHead:
		h.Set("Content-Length", "1000")
		resp.ContentLength = 1000
	case http.MethodGet:
		h.Set("Content-Length", "1000")
		resp.ContentLength = 1000
		resp.Body = io.NopCloser(bytes.NewReader(make([]byte, 1000)))
	case http.MethodDelete:
		resp.StatusCode = http.StatusNoContent
	}
	return resp, nil
}

func BenchmarkClientOverhead(b *testing.B) {
	d, err := New(context.Background(), map[string]any{
		"accesskey": "key", "secretkey": "secret", "region": "us-east-1", "bucket": "bucket",
		"regionendpoint": "http://127.0.0.1:1", "forcepathstyle": true, "secure": false,
	})
	if err != nil {
		b.Fatal(err)
	}
	opts := d.c.Options()
	opts.HTTPClient = canned{}
	d.c = s3.New(opts)
	d.lean.client = canned{}
	ctx := context.Background()
	small := bytes.Repeat([]byte("x"), 1000)
	for _, c := range smallOps(ctx, d, small, func(int) string { return "/small" }) {
		for _, v := range clientVariants(d) {
			b.Run(v.name+"/"+c.name, func(b *testing.B) {
				v.use(d)
				b.ReportAllocs()
				for b.Loop() {
					if err := c.fn(0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// smallOp is a request on a small object whose cost a benchmark measures;
// fn sends the i-th.
type smallOp struct {
	name string
	fn   func(i int) error
}

// smallOps are HEAD and GET of /small, and PUT and DELETE of the path put
// gives the i-th, through the driver's calls.
func smallOps(ctx context.Context, d *Driver, small []byte, put func(i int) string) []smallOp {
	return []smallOp{
		{"HEAD", func(int) error { _, err := d.StatFile(ctx, "/small"); return err }},
		{"GET", func(int) error {
			r, err := d.Reader(ctx, "/small", 0)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, r)
			_ = r.Close()
			return err
		}},
		{"PUT", func(i int) error { return d.PutContent(ctx, put(i), small) }},
		{"DELETE", func(i int) error {
			_, err := d.deleteObject(ctx, &s3.DeleteObjectInput{Bucket: d.bucket, Key: aws.String(strings.TrimPrefix(put(i), "/"))})
			return err
		}},
	}
}
