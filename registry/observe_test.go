package registry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// requestLines returns the "request" log lines, decoded.
func requestLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	return lines
}

// asUser is an Authorizer that lets everyone in as "alice".
func asUser(w http.ResponseWriter, r *http.Request, _ []Access) (*http.Request, error) {
	return r.WithContext(WithUser(r.Context(), "alice")), nil
}

func TestRequestLogLineHasTheFieldsAndNoSecrets(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	s := newServer(t, &setup{opts: Options{Authorize: asUser}, log: log})
	const secret = "c2VjcmV0LXBhc3N3b3Jk"
	content := []byte("logged blob")
	d := s.pushBlob("team/app", content)

	res := s.do(http.MethodGet, "/v2/team/app/blobs/"+d.String()+"?token="+secret, nil, "Authorization", "Basic "+secret)
	res.expect(t, http.StatusOK, "")

	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("a credential was logged:\n%s", out)
	}
	lines := requestLines(t, out)
	last := lines[len(lines)-1]
	want := map[string]any{
		"method":     "GET",
		"route":      "/v2/<name>/blobs/<digest>",
		"repo":       "team/app",
		"user":       "alice",
		"status":     float64(200),
		"bytes":      float64(len(content)),
		"request_id": res.header.Get("X-Request-Id"),
	}
	for k, v := range want {
		if last[k] != v {
			t.Errorf("log %s = %v, want %v", k, last[k], v)
		}
	}
	if _, ok := last["duration"]; !ok {
		t.Error("log line has no duration")
	}
	if res.header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id response header")
	}
	// The push's PUT read the blob from the request body.
	var sawIn bool
	for _, l := range lines {
		if l["method"] == "PUT" || l["method"] == "POST" {
			if n, _ := l["bytes_in"].(float64); n == float64(len(content)) {
				sawIn = true
			}
		}
	}
	if !sawIn {
		t.Errorf("no upload line with bytes_in %d:\n%s", len(content), out)
	}
}

func TestAccessLogDisabledDropsRequestLines(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	s := newServer(t, &setup{opts: Options{AccessLogDisabled: true}, log: log})
	s.do(http.MethodGet, "/v2/", nil).expect(t, http.StatusOK, "")
	if lines := requestLines(t, buf.String()); len(lines) != 0 {
		t.Fatalf("request lines logged with the access log disabled: %v", lines)
	}
}

func TestObserverHearsEveryRequest(t *testing.T) {
	var mu sync.Mutex
	var got []RequestInfo
	observe := func(r *http.Request) (*http.Request, func(RequestInfo)) {
		return nil, func(info RequestInfo) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, info)
		}
	}
	s := newServer(t, &setup{opts: Options{Observe: Observers(observe, nil)}})
	s.pushBlob("app", []byte("observed"))
	s.do(http.MethodGet, "/nowhere", nil)

	mu.Lock()
	defer mu.Unlock()
	var upload *RequestInfo
	for i := range got {
		if !got[i].UploadStarted.IsZero() {
			upload = &got[i]
		}
	}
	if upload == nil {
		t.Fatalf("no request reported a completed upload: %+v", got)
	}
	if upload.Handler == "" || upload.BytesIn == 0 || upload.Status != http.StatusCreated || upload.Repository != "app" {
		t.Errorf("upload reported as %+v", *upload)
	}
	if last := got[len(got)-1]; last.Handler != "" || last.Status != http.StatusNotFound {
		t.Errorf("unknown path reported as %+v", last)
	}
}
