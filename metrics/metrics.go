// Package metrics holds Berth's Prometheus collectors: HTTP requests,
// uploads, storage driver operations, caches and notification queues, all
// registered on one registry of their own (never the process-wide default)
// and served by Handler on the debug listener.
//
// Series keep CNCF Distribution's names where Distribution has the series
// (registry_http_*, registry_storage_action_seconds,
// registry_storage_cache_total, registry_notifications_pending), so
// dashboards built for it keep working.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "registry"

// Metrics holds the collectors. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	reqSize   *prometheus.HistogramVec
	respSize  *prometheus.HistogramVec
	uploads   prometheus.Histogram
	action    *prometheus.HistogramVec
	actionErr *prometheus.CounterVec
}

// Buckets: requests and driver calls from 5 ms to a minute; sizes from
// 1 KiB to 4 GiB; uploads from a second to an hour.
var (
	durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25, 60}
	sizeBuckets     = prometheus.ExponentialBuckets(1024, 4, 12)
	uploadBuckets   = []float64{1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
)

// New returns the collectors, with Go runtime and process metrics,
// registered on a registry of their own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "Requests served, by route (handler), method and status code.",
		}, []string{"handler", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve a request, by route (handler) and method.",
			Buckets: durationBuckets,
		}, []string{"handler", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "http", Name: "in_flight_requests",
			Help: "Requests being served.",
		}),
		reqSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_size_bytes",
			Help:    "Request body bytes received, by route (handler); the sum is the bytes in.",
			Buckets: sizeBuckets,
		}, []string{"handler"}),
		respSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "response_size_bytes",
			Help:    "Response body bytes sent, by route (handler); the sum is the bytes out.",
			Buckets: sizeBuckets,
		}, []string{"handler"}),
		uploads: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "upload_duration_seconds",
			Help:    "Time from the start of a blob upload to its completion.",
			Buckets: uploadBuckets,
		}),
		action: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "storage", Name: "action_seconds",
			Help:    "Time a storage driver operation takes, by driver and operation.",
			Buckets: durationBuckets,
		}, []string{"driver", "action"}),
		actionErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "storage", Name: "action_errors_total",
			Help: "Storage driver operations that failed (not counting paths not found), by driver and operation.",
		}, []string{"driver", "action"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.inFlight, m.reqSize, m.respSize, m.uploads,
		m.action, m.actionErr,
	)
	return m
}

// Registry is the registry every collector is on, for adding more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe is a registry.Observer counting requests, their bytes and
// durations, and completed uploads.
func (m *Metrics) Observe(r *http.Request) (*http.Request, func(registry.RequestInfo)) {
	m.inFlight.Inc()
	return nil, func(info registry.RequestInfo) {
		m.inFlight.Dec()
		handler := info.Handler
		if handler == "" {
			// Paths outside the API share one label value, so scanners
			// cannot grow the series without bound.
			handler = "unknown"
		}
		m.requests.WithLabelValues(handler, info.Method, strconv.Itoa(info.Status)).Inc()
		m.duration.WithLabelValues(handler, info.Method).Observe(info.Duration.Seconds())
		m.reqSize.WithLabelValues(handler).Observe(float64(info.BytesIn))
		m.respSize.WithLabelValues(handler).Observe(float64(info.BytesOut))
		if !info.UploadStarted.IsZero() {
			m.uploads.Observe(time.Since(info.UploadStarted).Seconds())
		}
	}
}

// Begin makes Metrics a driver.Observer: it times every operation and
// counts its failures. A path not found is an answer, not a failure.
func (m *Metrics) Begin(ctx context.Context, drv, op, _ string) (context.Context, func(error)) {
	start := time.Now()
	return ctx, func(err error) {
		m.action.WithLabelValues(drv, op).Observe(time.Since(start).Seconds())
		if err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, context.Canceled) {
			m.actionErr.WithLabelValues(drv, op).Inc()
		}
	}
}

var _ driver.Observer = (*Metrics)(nil)
