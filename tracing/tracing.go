// Package tracing sends OpenTelemetry spans for requests and storage driver
// calls to an OTLP collector configured by the standard OTEL_* environment
// variables. It is off unless those variables ask for it.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage/driver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// scope names the instrumentation in every span.
const scope = "github.com/berth-registry/berth"

// Enabled reports whether the environment asks for traces: an OTLP
// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER=otlp, and
// neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))) {
	case "none":
		return false
	case "":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return true
	}
}

// NewProvider returns a tracer provider that batches spans to the OTLP
// exporter the environment describes (OTEL_EXPORTER_OTLP_PROTOCOL or its
// _TRACES_ variant: http/protobuf, the default, or grpc; the endpoint,
// headers, TLS and timeout variables are read by the exporter itself), or
// nil when Enabled is false. OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES apply. Shut it down to flush what is batched.
func NewProvider(ctx context.Context, getenv func(string) string, version string) (*sdktrace.TracerProvider, error) {
	if !Enabled(getenv) {
		return nil, nil
	}
	if e := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); e != "" && e != "otlp" {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: only otlp and none are supported", e)
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf and grpc are supported", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	// Later options win: the environment overrides Berth's own names.
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", "berth"),
			attribute.String("service.version", version),
		),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// Tracer makes spans for requests (a registry.Observer) and driver calls
// (a driver.Observer), children of the W3C traceparent a client sends.
type Tracer struct {
	t    trace.Tracer
	prop propagation.TextMapPropagator
}

// New returns a Tracer making spans with tp.
func New(tp trace.TracerProvider) *Tracer {
	return &Tracer{
		t:    tp.Tracer(scope),
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
}

// Observe starts a server span for a request; it is named for the route
// once the route is known. It is a registry.Observer.
func (t *Tracer) Observe(r *http.Request) (*http.Request, func(registry.RequestInfo)) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.t.Start(ctx, r.Method,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			// The path only: a query may carry a credential.
			attribute.String("url.path", r.URL.Path),
		),
	)
	return r.WithContext(ctx), func(info registry.RequestInfo) {
		if info.Route != "" {
			span.SetName(info.Method + " " + info.Route)
			span.SetAttributes(attribute.String("http.route", info.Route))
		}
		span.SetAttributes(
			attribute.Int("http.response.status_code", info.Status),
			attribute.String("registry.repository", info.Repository),
			attribute.String("registry.request_id", info.RequestID),
			attribute.Int64("http.request.body.size", info.BytesIn),
			attribute.Int64("http.response.body.size", info.BytesOut),
		)
		if info.User != "" {
			span.SetAttributes(attribute.String("enduser.id", info.User))
		}
		if info.Status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(info.Status))
		}
		span.End()
	}
}

// Begin starts a span for a driver call, a child of the request's span. It
// makes Tracer a driver.Observer. A path not found is an answer, not an
// error.
func (t *Tracer) Begin(ctx context.Context, drv, op, path string) (context.Context, func(error)) {
	ctx, span := t.t.Start(ctx, "storage."+op,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("storage.driver", drv),
			attribute.String("storage.path", path),
		),
	)
	return ctx, func(err error) {
		if err != nil && !errors.Is(err, driver.ErrNotFound) {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

var _ driver.Observer = (*Tracer)(nil)
