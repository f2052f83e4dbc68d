package tracing_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	_ "github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/berth-registry/berth/tracing"
	"github.com/opencontainers/go-digest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestEnabledFollowsTheEnvironment(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
	}
	for _, tt := range tests {
		getenv := func(k string) string { return tt.env[k] }
		if got := tracing.Enabled(getenv); got != tt.want {
			t.Errorf("%v: Enabled = %v, want %v", tt.env, got, tt.want)
		}
	}
}

func TestNoProviderWhenNotConfigured(t *testing.T) {
	tp, err := tracing.NewProvider(context.Background(), func(string) string { return "" }, "test")
	if err != nil || tp != nil {
		t.Fatalf("NewProvider = %v, %v; want nil, nil", tp, err)
	}
}

func TestUnsupportedExporterRefused(t *testing.T) {
	env := map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}
	if _, err := tracing.NewProvider(context.Background(), func(k string) string { return env[k] }, "test"); err == nil {
		t.Fatal("zipkin exporter accepted")
	}
}

// TestSpansReachAnOTLPCollector points the exporter at an HTTP server
// standing in for a collector and checks spans arrive at /v1/traces when
// the provider is shut down.
func TestSpansReachAnOTLPCollector(t *testing.T) {
	var posts atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			b, _ := io.ReadAll(r.Body)
			if len(b) > 0 {
				posts.Add(1)
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(collector.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")

	ctx := context.Background()
	tp, err := tracing.NewProvider(ctx, os.Getenv, "test")
	if err != nil || tp == nil {
		t.Fatalf("NewProvider: %v, %v", tp, err)
	}
	_, span := tp.Tracer("test").Start(ctx, "probe")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no spans posted to the collector")
	}
}

func TestSpansForRequestsAndDriverCalls(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tracing.New(tp)

	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := storage.New(driver.Instrument(d, tr), storage.Options{}, nil)
	srv := httptest.NewServer(registry.New(reg, registry.Options{Observe: tr.Observe}, nil))
	t.Cleanup(srv.Close)

	blob := []byte("traced")
	dg := digest.FromBytes(blob)
	resp, err := http.Post(srv.URL+"/v2/app/blobs/uploads/?digest="+dg.String(), "application/octet-stream", bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	exp.Reset()

	// The client's traceparent makes the request span part of its trace.
	const parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/app/blobs/"+dg.String(), nil)
	req.Header.Set("Traceparent", "00-"+parentTrace+"-00f067aa0ba902b7-01")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	spans := exp.GetSpans()
	var server *tracetest.SpanStub
	for i := range spans {
		if spans[i].SpanKind == trace.SpanKindServer {
			server = &spans[i]
		}
	}
	if server == nil {
		t.Fatalf("no server span among %d spans", len(spans))
	}
	if server.Name != "GET /v2/<name>/blobs/<digest>" {
		t.Errorf("server span named %q", server.Name)
	}
	if got := server.SpanContext.TraceID().String(); got != parentTrace {
		t.Errorf("server span in trace %s, want the client's %s", got, parentTrace)
	}
	attrs := map[string]string{}
	for _, kv := range server.Attributes {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	for k, want := range map[string]string{"http.route": "/v2/<name>/blobs/<digest>", "http.response.status_code": "200", "registry.repository": "app"} {
		if attrs[k] != want {
			t.Errorf("server span %s = %q, want %q", k, attrs[k], want)
		}
	}
	var driverSpans int
	for _, s := range spans {
		if s.SpanKind != trace.SpanKindClient {
			continue
		}
		driverSpans++
		if s.Parent.SpanID() != server.SpanContext.SpanID() {
			t.Errorf("driver span %s is not a child of the request span", s.Name)
		}
	}
	// The blob was cached by the push, but serving it opens the file.
	if driverSpans == 0 {
		t.Error("no driver spans for a blob pull")
	}
}
