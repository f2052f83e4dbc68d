package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/metrics"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	_ "github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
)

// server is the API over the inmemory driver with every hook of the
// metrics package connected, as cmd/berth connects them.
func server(t *testing.T) (*httptest.Server, *metrics.Metrics) {
	t.Helper()
	m := metrics.New()
	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := storage.New(driver.Instrument(d, m), storage.Options{}, nil)
	m.WatchCaches(reg.CacheStats)
	m.WatchQueues(func() map[string]metrics.QueueStats {
		return map[string]metrics.QueueStats{
			"audit": {Pending: 3, Delivered: 7, Failed: 2, Dropped: map[string]uint64{"pull": 1, "push": 0}, LastErrorAt: time.Unix(1700000000, 0)},
			"quiet": {},
		}
	})
	srv := httptest.NewServer(registry.New(reg, registry.Options{Observe: m.Observe}, nil))
	t.Cleanup(srv.Close)
	return srv, m
}

func do(t *testing.T, method, url, ctype string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// push uploads blob in two requests (a chunked upload) and a manifest
// pointing at it; pull reads both back.
func pushPull(t *testing.T, base string) {
	t.Helper()
	layer := []byte("layer content")
	config := []byte("{}")
	for _, blob := range [][]byte{layer, config} {
		resp := do(t, http.MethodPost, base+"/v2/app/blobs/uploads/", "", nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("start upload: %d", resp.StatusCode)
		}
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "http") {
			loc = base + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		resp = do(t, http.MethodPut, loc+sep+"digest="+digest.FromBytes(blob).String(), "application/octet-stream", blob)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("finish upload: %d", resp.StatusCode)
		}
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json",
			"digest": digest.FromBytes(config), "size": len(config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
			"digest": digest.FromBytes(layer), "size": len(layer)}},
	})
	if resp := do(t, http.MethodPut, base+"/v2/app/manifests/latest", "application/vnd.oci.image.manifest.v1+json", manifest); resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest: %d", resp.StatusCode)
	}
	for i := 0; i < 2; i++ { // twice, so the second pull hits the caches
		if resp := do(t, http.MethodGet, base+"/v2/app/manifests/latest", "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("get manifest: %d", resp.StatusCode)
		}
		if resp := do(t, http.MethodGet, base+"/v2/app/blobs/"+digest.FromBytes(layer).String(), "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("get blob: %d", resp.StatusCode)
		}
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d", rec.Code)
	}
	return rec.Body.String()
}

func TestMetricsExposeNamedSeriesAfterPushAndPull(t *testing.T) {
	srv, m := server(t)
	pushPull(t, srv.URL)
	out := scrape(t, m)

	for _, want := range []string{
		`registry_http_requests_total{code="201",handler="blob_upload_chunk",method="PUT"} 2`,
		`registry_http_requests_total{code="202",handler="blob_upload",method="POST"} 2`,
		`registry_http_requests_total{code="201",handler="manifest",method="PUT"} 1`,
		`registry_http_requests_total{code="200",handler="manifest",method="GET"} 2`,
		`registry_http_requests_total{code="200",handler="blob",method="GET"} 2`,
		`registry_http_request_duration_seconds_count{handler="blob",method="GET"} 2`,
		`registry_http_request_size_bytes_sum{handler="blob_upload_chunk"} 15`, // 13 + 2 bytes pushed
		`registry_http_response_size_bytes_sum{handler="blob"} 26`,             // 13 bytes pulled twice
		`registry_http_upload_duration_seconds_count 2`,
		`registry_http_in_flight_requests 0`,
		`registry_storage_action_seconds_count{action="commit",driver="inmemory"}`,
		`registry_storage_action_seconds_count{action="stat",driver="inmemory"}`,
		`registry_storage_cache_total{cache="content",type="Hit"}`,
		`registry_storage_cache_total{cache="blobs",type="Request"}`,
		`registry_storage_cache_entries{cache="content"} 2`, // the manifest and the pulled layer
		`registry_notifications_pending{endpoint="audit"} 3`,
		`registry_notifications_delivered_total{endpoint="audit"} 7`,
		`registry_notifications_failed_total{endpoint="audit"} 2`,
		`registry_notifications_dropped_total{action="pull",endpoint="audit"} 1`,
		`registry_notifications_dropped_total{action="push",endpoint="audit"} 0`,
		`registry_notifications_last_error_timestamp_seconds{endpoint="audit"} 1.7e+09`,
		`registry_notifications_delivered_total{endpoint="quiet"} 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(out, `registry_notifications_last_error_timestamp_seconds{endpoint="quiet"}`) {
		t.Error("an endpoint that never failed has a last-error time")
	}
	if strings.Contains(out, `registry_storage_cache_total{cache="content",type="Hit"} 0`) {
		t.Error("a second pull of a manifest did not hit the cache")
	}
	if t.Failed() {
		t.Log(out)
	}
}

func TestPathsOutsideTheAPIShareOneLabel(t *testing.T) {
	srv, m := server(t)
	for _, p := range []string{"/a", "/b", "/c/d"} {
		do(t, http.MethodGet, srv.URL+p, "", nil)
	}
	if out := scrape(t, m); !strings.Contains(out, `registry_http_requests_total{code="404",handler="unknown",method="GET"} 3`) {
		t.Errorf("unknown paths not counted under one label:\n%s", out)
	}
}

// failing fails every operation of the driver it wraps but Name.
type failing struct {
	driver.Driver
}

func (failing) Stat(context.Context, string) (driver.FileInfo, error) {
	return driver.FileInfo{}, io.ErrUnexpectedEOF
}

func TestDriverErrorsCountedButNotFoundIsNot(t *testing.T) {
	m := metrics.New()
	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ok := driver.Instrument(d, m)
	if _, err := ok.Stat(ctx, "/missing"); err == nil {
		t.Fatal("stat of a missing path succeeded")
	}
	bad := driver.Instrument(failing{d}, m)
	if _, err := bad.Stat(ctx, "/x"); err == nil {
		t.Fatal("failing stat succeeded")
	}
	out := scrape(t, m)
	if !strings.Contains(out, `registry_storage_action_errors_total{action="stat",driver="inmemory"} 1`) {
		t.Errorf("want exactly one stat error counted:\n%s", out)
	}
	if !strings.Contains(out, `registry_storage_action_seconds_count{action="stat",driver="inmemory"} 2`) {
		t.Errorf("want both stats timed:\n%s", out)
	}
}
