package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-registry/berth/storage/driver"
)

// leanOps runs, through d, a PUT, HEAD, GET and DELETE of one object, each
// on the lean path, and checks what each answered.
func leanOps(t *testing.T, ctx context.Context, d *Driver) {
	t.Helper()
	if d.lean == nil {
		t.Fatal("the driver has no lean path")
	}
	if err := d.PutContent(ctx, "/lean/file", []byte("lean data")); err != nil {
		t.Fatalf("PutContent: %v", err)
	}
	fi, err := d.StatFile(ctx, "/lean/file")
	if err != nil || fi.Size != int64(len("lean data")) || fi.ModTime.IsZero() {
		t.Fatalf("StatFile = %+v, %v", fi, err)
	}
	if got := readAll(t, d, "/lean/file"); string(got) != "lean data" {
		t.Fatalf("read %q", got)
	}
	if _, err := d.deleteObject(ctx, &s3.DeleteObjectInput{Bucket: d.bucket, Key: aws.String(d.key("/lean/file"))}); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	if _, err := d.StatFile(ctx, "/lean/file"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("StatFile after delete = %v, want ErrNotFound", err)
	}
}

// TestLeanRequestsSkipTheSDK: HEAD, GET, PUT and DELETE of an object go
// out lean (without the x-id query the SDK adds), and work against MinIO.
func TestLeanRequestsSkipTheSDK(t *testing.T) {
	s := newStore(t)
	rec := newRecorder(t, s.m.Endpoint)
	d := rec.driver(t, s)
	leanOps(t, context.Background(), d)
	reqs := rec.Take()
	for _, m := range []string{http.MethodPut, http.MethodHead, http.MethodGet, http.MethodDelete} {
		if count(reqs, m, "/lean/file") == 0 {
			t.Errorf("no %s of the file in %v", m, reqs)
		}
	}
	if n := count(reqs, "", "x-id="); n != 0 {
		t.Errorf("%d requests went through the SDK: %v", n, reqs)
	}
	// With loglevel the SDK sends (and logs) them all.
	if d := s.driver(t, "", driver.Params{"loglevel": "debug"}); d.lean != nil {
		t.Error("a driver with loglevel debug has a lean path")
	}
}

// TestLeanRetries: a first attempt answered 503 SlowDown, or a connection
// closed without an answer, is sent again after a backoff, on every lean
// request.
func TestLeanRetries(t *testing.T) {
	for _, fail := range []struct {
		name string
		do   func(w http.ResponseWriter)
	}{
		{"slow down", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`))
		}},
		{"connection closed", func(w http.ResponseWriter) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}},
	} {
		t.Run(fail.name, func(t *testing.T) {
			s := newStore(t)
			var (
				mu   sync.Mutex
				seen = map[string]int{}
			)
			url := minioProxy(t, s.m.Endpoint, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				k := r.Method + " " + r.URL.Path
				mu.Lock()
				seen[k]++
				first := seen[k] == 1
				mu.Unlock()
				if first && strings.Contains(r.URL.Path, "/lean/") {
					fail.do(w)
					return
				}
				next.ServeHTTP(w, r)
			})
			leanOps(t, context.Background(), s.through(t, url, nil))
			mu.Lock()
			defer mu.Unlock()
			for _, m := range []string{http.MethodPut, http.MethodHead, http.MethodGet, http.MethodDelete} {
				if n := seen[m+" /"+s.bucket+"/lean/file"]; n < 2 {
					t.Errorf("%s sent %d times, want a retry", m, n)
				}
			}
		})
	}
}

// TestLeanDeadline: a lean request ends with its context's deadline while
// the store does not answer.
func TestLeanDeadline(t *testing.T) {
	s := newStore(t)
	url := minioProxy(t, s.m.Endpoint, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		// Never answers. The body is read first: until it is, the server
		// cannot see the client go, and the handler would outlive the test.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	})
	d := s.through(t, url, nil)
	for name, op := range map[string]func(ctx context.Context) error{
		"HEAD": func(ctx context.Context) error { _, err := d.StatFile(ctx, "/x"); return err },
		"GET":  func(ctx context.Context) error { _, err := d.Reader(ctx, "/x", 0); return err },
		"PUT":  func(ctx context.Context) error { return d.PutContent(ctx, "/x", []byte("x")) },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := op(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s past its deadline = %v, want DeadlineExceeded", name, err)
		}
	}
}

// TestLeanPutSendsTheSDKsHeaders: a lean PUT carries the headers the SDK's
// PutObject sends for the same input (encryption, KMS key, storage class,
// ACL, content type, metadata, If-None-Match), and MinIO stores what it
// can hold of them.
func TestLeanPutSendsTheSDKsHeaders(t *testing.T) {
	s := newStore(t)
	var (
		mu   sync.Mutex
		sent = map[string]http.Header{}
	)
	url := minioProxy(t, s.m.Endpoint, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == http.MethodPut {
			mu.Lock()
			sent[r.URL.Path] = r.Header.Clone()
			mu.Unlock()
			if r.Header.Get("X-Amz-Server-Side-Encryption") != "" {
				return // MinIO without a KMS refuses it: the headers are what is checked
			}
		}
		next.ServeHTTP(w, r)
	})
	d := s.through(t, url, driver.Params{"storageclass": "REDUCED_REDUNDANCY", "objectacl": "private"})
	ctx := context.Background()
	put := func(key string, viaSDK, encrypt bool) {
		in := &s3.PutObjectInput{
			Bucket: d.bucket, Key: aws.String(key), Body: bytes.NewReader([]byte("data")),
			ContentLength: aws.Int64(4), ContentType: aws.String("application/octet-stream"),
			Metadata: map[string]string{"berth-offset": "12"}, IfNoneMatch: aws.String("*"),
		}
		d.putOptions(in)
		if encrypt {
			in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String("key-1")
		}
		var err error
		if viaSDK {
			_, err = d.c.PutObject(ctx, in)
		} else {
			_, err = d.putObject(ctx, in)
		}
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	for _, encrypt := range []bool{false, true} {
		put("sdk", true, encrypt)
		put("lean", false, encrypt)
		mu.Lock()
		sdk, lean := sent["/"+s.bucket+"/sdk"], sent["/"+s.bucket+"/lean"]
		mu.Unlock()
		for _, h := range []string{"Content-Type", "Content-Length", "If-None-Match", "X-Amz-Meta-Berth-Offset",
			"X-Amz-Server-Side-Encryption", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id",
			"X-Amz-Storage-Class", "X-Amz-Acl", "X-Amz-Content-Sha256", "Accept-Encoding", "User-Agent"} {
			if sdk.Get(h) != lean.Get(h) {
				t.Errorf("encrypt %v: %s: lean sent %q, the SDK %q", encrypt, h, lean.Get(h), sdk.Get(h))
			}
		}
		if encrypt {
			continue
		}
		head, err := s.m.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket, Key: aws.String("lean")})
		if err != nil {
			t.Fatal(err)
		}
		if head.StorageClass != types.StorageClassReducedRedundancy || aws.ToString(head.ContentType) != "application/octet-stream" || head.Metadata["berth-offset"] != "12" {
			t.Errorf("MinIO holds class %q, type %q, metadata %v", head.StorageClass, aws.ToString(head.ContentType), head.Metadata)
		}
		if _, err := d.headObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket, Key: aws.String("lean")}); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"sdk", "lean"} {
			_, _ = s.m.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: d.bucket, Key: aws.String(k)})
		}
	}
	// The metadata comes back as the SDK's HeadObject and GetObject read it.
	put("lean", false, false)
	head, err := d.headObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket, Key: aws.String("lean")})
	if err != nil || head.Metadata["berth-offset"] != "12" || aws.ToString(head.ETag) == "" {
		t.Fatalf("lean HEAD = %+v, %v", head, err)
	}
	get, err := d.getObject(ctx, &s3.GetObjectInput{Bucket: d.bucket, Key: aws.String("lean"), Range: aws.String("bytes=1-2")})
	if err != nil {
		t.Fatal(err)
	}
	_ = get.Body.Close()
	if get.Metadata["berth-offset"] != "12" || aws.ToString(get.ContentRange) != "bytes 1-2/4" || aws.ToInt64(get.ContentLength) != 2 {
		t.Errorf("lean ranged GET: metadata %v, range %q, length %d", get.Metadata, aws.ToString(get.ContentRange), aws.ToInt64(get.ContentLength))
	}
}

// TestLeanOverTLSWithSkipVerify: with secure and skipverify the lean path
// talks HTTPS to a store whose certificate is not trusted (the SDK's client
// carries the setting), and without skipverify it refuses.
func TestLeanOverTLSWithSkipVerify(t *testing.T) {
	s := newStore(t)
	target, err := url.Parse(s.m.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the driver signed for the proxy's address
	}}
	srv := httptest.NewTLSServer(proxy)
	t.Cleanup(srv.Close)
	d := s.through(t, srv.URL, driver.Params{"secure": true, "skipverify": true})
	if !d.lean.https {
		t.Fatalf("lean base %s is not https", d.lean.base)
	}
	leanOps(t, context.Background(), d)
	strict := s.through(t, srv.URL, driver.Params{"secure": true})
	if err := strict.PutContent(context.Background(), "/x", []byte("x")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("PutContent to an untrusted certificate = %v, want a certificate error", err)
	}
}

// TestLeanEndpointStyles: the endpoint the SDK resolves once puts the
// bucket in the path or in the host as configured.
func TestLeanEndpointStyles(t *testing.T) {
	for _, c := range []struct {
		params driver.Params
		want   string
	}{
		{driver.Params{"regionendpoint": "http://s3.example.test:9000", "forcepathstyle": true}, "http://s3.example.test:9000/bucket"},
		{driver.Params{"regionendpoint": "http://s3.example.test:9000", "forcepathstyle": false}, "http://bucket.s3.example.test:9000"},
		{driver.Params{"region": "eu-west-1"}, "https://bucket.s3.eu-west-1.amazonaws.com"},
		{driver.Params{"region": "eu-west-1", "forcepathstyle": true}, "https://s3.eu-west-1.amazonaws.com/bucket"},
		{driver.Params{"region": "eu-west-1", "secure": false}, "http://bucket.s3.eu-west-1.amazonaws.com"},
	} {
		p := driver.Params{"accesskey": "k", "secretkey": "s", "region": "us-east-1", "bucket": "bucket"}
		for k, v := range c.params {
			p[k] = v
		}
		d, err := New(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if d.lean == nil || d.lean.base != c.want {
			t.Errorf("%v: lean base %v, want %s", c.params, d.lean, c.want)
		}
	}
}

// TestLeanCorrectsClockSkew: a lean request signed by a clock an hour
// behind MinIO's is refused (RequestTimeTooSkewed), learns the skew from
// the answer's Date, and goes through signed for MinIO's clock.
func TestLeanCorrectsClockSkew(t *testing.T) {
	s := newStore(t)
	d := s.driver(t, "", nil)
	d.lean.skew.Store(int64(-time.Hour)) // as if this host's clock were an hour ahead
	leanOps(t, context.Background(), d)
	if skew := time.Duration(d.lean.skew.Load()); skew < -time.Minute || skew > time.Minute {
		t.Errorf("skew after MinIO's answers: %v, want about none", skew)
	}
}
