package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"context"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
	"io"
	"sync/atomic"
)

func TestBaseAnswersWithAPIVersion(t *testing.T) {
	s := newServer(t, nil)
	for _, method := range []string{"GET", "HEAD"} {
		res := s.do(method, "/v2/", nil)
		res.expect(t, http.StatusOK, "")
		res.expectHeader(t, "Docker-Distribution-API-Version", "registry/2.0")
		if res.header.Get("X-Request-Id") == "" {
			t.Fatal("no X-Request-Id")
		}
	}
}

func TestEveryResponseCarriesTheAPIVersion(t *testing.T) {
	s := newServer(t, &setup{opts: Options{Headers: http.Header{"X-Frame-Options": {"DENY"}}}})
	tests := []struct {
		name, method, path string
		status             int
		code               Code
	}{
		{"unknown route", "GET", "/v2/repo/nothing/here", 404, CodeUnsupported},
		{"outside the API", "GET", "/favicon.ico", 404, CodeUnsupported},
		{"wrong method", "PATCH", "/v2/repo/manifests/v1", 405, CodeUnsupported},
		{"invalid name", "GET", "/v2/UPPER/tags/list", 400, CodeNameInvalid},
		{"name too long", "GET", "/v2/" + strings.Repeat("a", 256) + "/tags/list", 400, CodeNameInvalid},
		{"manifest unknown", "GET", "/v2/repo/manifests/v1", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.do(tt.method, tt.path, nil)
			res.expect(t, tt.status, tt.code)
			res.expectHeader(t, "Docker-Distribution-API-Version", "registry/2.0")
			res.expectHeader(t, "X-Frame-Options", "DENY")
			res.expectHeader(t, "Content-Type", "application/json; charset=utf-8")
		})
	}
	res := s.do("DELETE", "/v2/", nil)
	res.expect(t, http.StatusMethodNotAllowed, CodeUnsupported)
	res.expectHeader(t, "Allow", "GET, HEAD")
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	s := newServer(t, nil)
	d := s.pushBlob("repo", []byte("before"))
	// A second API over the same storage, read-only.
	h := New(s.reg, Options{ReadOnly: true}, nil)
	for _, tt := range []struct{ method, path string }{
		{"POST", "/v2/repo/blobs/uploads/"},
		{"PUT", "/v2/repo/manifests/v1"},
		{"PATCH", "/v2/repo/blobs/uploads/x"},
		{"DELETE", "/v2/repo/blobs/" + d.String()},
		{"DELETE", "/v2/repo/manifests/v1"},
	} {
		res := serve(t, h, tt.method, tt.path)
		res.expect(t, http.StatusMethodNotAllowed, CodeUnsupported)
		if !strings.Contains(string(res.body), "read-only") {
			t.Fatalf("%s %s: body %s does not say read-only", tt.method, tt.path, res.body)
		}
	}
	serve(t, h, "GET", "/v2/repo/blobs/"+d.String()).expect(t, http.StatusOK, "")
}

func TestPrefixMountsTheAPI(t *testing.T) {
	s := newServer(t, &setup{opts: Options{Prefix: "/registry/"}})
	s.do("GET", "/registry/v2/", nil).expect(t, http.StatusOK, "")
	s.do("GET", "/v2/", nil).expect(t, http.StatusNotFound, CodeUnsupported)
	s.do("POST", "/registry/v2/repo/blobs/uploads/?digest="+digest.FromString("a").String(), []byte("a")).expect(t, http.StatusCreated, "")
	s.do("GET", "/registry/v2/repo/blobs/"+digest.FromString("a").String(), nil).expect(t, http.StatusOK, "")
}

func TestAuthorizerSeesWhatEachRouteDoes(t *testing.T) {
	d := digest.FromString("x").String()
	tests := []struct {
		method, path string
		want         []Access
	}{
		{"GET", "/v2/", nil},
		{"GET", "/v2/_catalog", []Access{{"registry", "catalog", []string{"*"}}}},
		{"GET", "/v2/a/b/tags/list", []Access{{"repository", "a/b", []string{"pull"}}}},
		{"HEAD", "/v2/r/manifests/v1", []Access{{"repository", "r", []string{"pull"}}}},
		{"PUT", "/v2/r/manifests/v1", []Access{{"repository", "r", []string{"pull", "push"}}}},
		{"DELETE", "/v2/r/manifests/v1", []Access{{"repository", "r", []string{"delete"}}}},
		{"GET", "/v2/r/blobs/" + d, []Access{{"repository", "r", []string{"pull"}}}},
		{"DELETE", "/v2/r/blobs/" + d, []Access{{"repository", "r", []string{"delete"}}}},
		{"POST", "/v2/r/blobs/uploads/", []Access{{"repository", "r", []string{"pull", "push"}}}},
		{"POST", "/v2/r/blobs/uploads/?mount=" + d + "&from=src", []Access{
			{"repository", "r", []string{"pull", "push"}}, {"repository", "src", []string{"pull"}}}},
		{"POST", "/v2/r/blobs/uploads/?mount=" + d, []Access{{"repository", "r", []string{"pull", "push"}}}},
		{"PATCH", "/v2/r/blobs/uploads/id", []Access{{"repository", "r", []string{"pull", "push"}}}},
		{"GET", "/v2/r/blobs/uploads/id", []Access{{"repository", "r", []string{"pull", "push"}}}},
		{"DELETE", "/v2/r/blobs/uploads/id", []Access{{"repository", "r", []string{"pull", "push"}}}},
		{"GET", "/v2/r/referrers/" + d, []Access{{"repository", "r", []string{"pull"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var got []Access
			called := false
			deny := errors.New("stop here")
			s := newServer(t, &setup{opts: Options{Authorize: func(w http.ResponseWriter, r *http.Request, access []Access) (*http.Request, error) {
				called, got = true, access
				return nil, &Error{Code: CodeDenied, Err: deny}
			}}})
			code := CodeDenied
			if tt.method == "HEAD" {
				code = ""
			}
			s.do(tt.method, tt.path, nil).expect(t, http.StatusForbidden, code)
			if !called || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("access %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAuthorizerChallengeAndGrant(t *testing.T) {
	s := newServer(t, &setup{opts: Options{Authorize: func(w http.ResponseWriter, r *http.Request, access []Access) (*http.Request, error) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth"`)
			return nil, &Error{Code: CodeUnauthorized}
		}
		return r, nil
	}}})
	res := s.do("GET", "/v2/", nil)
	res.expect(t, http.StatusUnauthorized, CodeUnauthorized)
	res.expectHeader(t, "WWW-Authenticate", `Basic realm="berth"`)
	s.do("GET", "/v2/", nil, "Authorization", "Basic eDp5").expect(t, http.StatusOK, "")

	failing := newServer(t, &setup{opts: Options{Authorize: func(http.ResponseWriter, *http.Request, []Access) (*http.Request, error) {
		return nil, errors.New("token key unreadable")
	}}})
	failing.do("GET", "/v2/", nil).expect(t, http.StatusInternalServerError, CodeUnknown)
}

func TestPanicBecomes500(t *testing.T) {
	var buf syncBuffer
	s := newServer(t, &setup{
		log: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		opts: Options{Authorize: func(http.ResponseWriter, *http.Request, []Access) (*http.Request, error) {
			panic("boom")
		}},
	})
	res := serve(t, s.h, "GET", "/v2/")
	res.expect(t, http.StatusInternalServerError, CodeUnknown)
	if strings.Contains(string(res.body), "boom") {
		t.Fatal("the panic leaked to the client")
	}
	if !strings.Contains(buf.String(), "boom") {
		t.Fatal("the panic was not logged")
	}
}

func TestOneLogLinePerRequest(t *testing.T) {
	var buf syncBuffer
	s := newServer(t, &setup{log: slog.New(slog.NewJSONHandler(&buf, nil))})
	content := []byte("logged")
	d := s.pushBlob("lib/app", content)
	buf.Reset()
	// Served in this goroutine: the log line is written when serve returns.
	res := serve(t, s.h, "GET", "/v2/lib/app/blobs/"+d.String())
	res.expect(t, http.StatusOK, "")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines: %q", len(lines), lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"msg": "request", "method": "GET", "route": "/v2/<name>/blobs/<digest>", "repo": "lib/app",
		"status": float64(200), "bytes": float64(len(content)), "request_id": res.header.Get("X-Request-Id"),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("log %s = %v, want %v", k, rec[k], v)
		}
	}
	if _, ok := rec["duration"]; !ok {
		t.Error("log line has no duration")
	}
}

func TestServerErrorsAreLoggedWithTheirCause(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	s := newServer(t, &setup{log: log, opts: Options{Authorize: func(http.ResponseWriter, *http.Request, []Access) (*http.Request, error) {
		return nil, errors.New("backend unreachable")
	}}})
	res := serve(t, s.h, "GET", "/v2/")
	res.expect(t, http.StatusInternalServerError, CodeUnknown)
	if strings.Contains(string(res.body), "unreachable") {
		t.Fatal("the cause leaked to the client")
	}
	if !strings.Contains(buf.String(), `"level":"ERROR"`) || !strings.Contains(buf.String(), "backend unreachable") {
		t.Fatalf("log %s lacks the error and its cause", buf.String())
	}
}

// serve runs one request through h in this goroutine.
func serve(t *testing.T, h http.Handler, method, path string) result {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return result{status: rec.Code, header: rec.Result().Header, body: rec.Body.Bytes()}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// outage is a driver whose backend can be taken down and brought back.
type outage struct {
	driver.Driver
	down *atomic.Bool
}

var errBackendDown = errors.New("dial tcp 127.0.0.1:9000: connect: connection refused")

func (o outage) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	if o.down.Load() {
		return driver.FileInfo{}, errBackendDown
	}
	return o.Driver.Stat(ctx, p)
}

func (o outage) Reader(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	if o.down.Load() {
		return nil, errBackendDown
	}
	return o.Driver.Reader(ctx, p, off)
}

func (o outage) Writer(ctx context.Context, p string, app bool) (driver.FileWriter, error) {
	if o.down.Load() {
		return nil, errBackendDown
	}
	return o.Driver.Writer(ctx, p, app)
}

// TestBackendOutageIs503AndRecoversWithoutRestart: while storage is down,
// reads and writes get a clear 503 that hides the backend's words; when it
// comes back, the same server serves again.
func TestBackendOutageIs503AndRecoversWithoutRestart(t *testing.T) {
	var down atomic.Bool
	s := newServer(t, &setup{
		storage: storage.Options{DeleteEnabled: true},
		wrap:    func(d driver.Driver) driver.Driver { return driver.Wrap(outage{d, &down}) },
	})
	d, _ := s.pushImage("repo", "v1", image{})
	down.Store(true)
	for _, req := range [][2]string{{"GET", "/v2/repo/manifests/v1"}, {"POST", "/v2/repo/blobs/uploads/"}} {
		res := s.do(req[0], req[1], nil)
		res.expect(t, http.StatusServiceUnavailable, CodeUnknown)
		if body := string(res.body); !strings.Contains(body, "storage backend unavailable") || strings.Contains(body, "refused") {
			t.Errorf("%s %s during the outage: body %s", req[0], req[1], body)
		}
	}
	down.Store(false)
	res := s.do("GET", "/v2/repo/manifests/v1", nil, "Accept", mtManifest)
	res.expect(t, http.StatusOK, "")
	res.expectHeader(t, "Docker-Content-Digest", d.String())
	s.do("POST", "/v2/repo/blobs/uploads/", nil).expect(t, http.StatusAccepted, "")
}

func (o outage) Create(ctx context.Context, p string, b []byte) error {
	if o.down.Load() {
		return errBackendDown
	}
	return driver.Create(ctx, o.Driver, p, b)
}
