package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/health"
	"github.com/berth-registry/berth/metrics"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/mirror"
	"github.com/berth-registry/berth/tracing"
)

// observability is what the health, http.debug.prometheus and log
// sections and the OTEL_* environment add to serve.
type observability struct {
	// driver is the driver to build storage on: the one given, reporting
	// its operations to metrics and tracing when either is on.
	driver driver.Driver
	// debug are the handlers to mount on the debug listener, by path.
	debug map[string]http.Handler

	observe registry.Observer // nil when neither metrics nor tracing is on
	checker *health.Checker
	metrics *metrics.Metrics // nil unless http.debug.prometheus.enabled
	quiet   bool             // log.accesslog.disabled
	stop    []func(context.Context) error
}

// setupObservability builds health checks (started at once, stopped by
// shutdown), metrics and tracing from cfg and the environment, around d
// as driver.Open returned it.
func setupObservability(ctx context.Context, cfg *config.Config, d driver.Driver, log *slog.Logger) (*observability, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &observability{driver: d, debug: map[string]http.Handler{}, quiet: cfg.Log.AccessLog.Disabled}

	tp, err := tracing.NewProvider(ctx, os.Getenv, version)
	if err != nil {
		return nil, err
	}
	var driverObs []driver.Observer
	var reqObs []registry.Observer
	if cfg.HTTP.Debug.Prometheus.Enabled {
		if cfg.HTTP.Debug.Addr == "" {
			log.Warn("http.debug.prometheus.enabled without http.debug.addr: metrics are collected but not served")
		}
		o.metrics = metrics.New()
		path := cfg.HTTP.Debug.Prometheus.Path
		if path == "" {
			path = "/metrics"
		}
		o.debug[path] = o.metrics.Handler()
		o.metrics.ConfigNoEffect(cfg.NoEffect())
		driverObs = append(driverObs, o.metrics)
		reqObs = append(reqObs, o.metrics.Observe)
	}
	if tp != nil {
		tr := tracing.New(tp)
		driverObs = append(driverObs, tr)
		reqObs = append(reqObs, tr.Observe)
		o.stop = append(o.stop, tp.Shutdown)
		log.Info("tracing enabled")
	}
	if len(driverObs) > 0 {
		o.driver = driver.Instrument(d, driver.Observers(driverObs...))
		o.observe = registry.Observers(reqObs...)
	}

	// Checks use the driver as given, so probes stay out of the metrics
	// and traces of what clients do.
	o.checker = health.New(log)
	h := cfg.Health
	if h.StorageDriver.Enabled {
		o.checker.Add("storagedriver_"+d.Name(), h.StorageDriver.Interval, h.StorageDriver.Threshold,
			health.StorageDriver(d, cfg.Storage.Maintenance.ReadOnly.Enabled))
	}
	for _, f := range h.File {
		o.checker.Add(f.File, f.Interval, f.Threshold, health.File(f.File))
	}
	for _, c := range h.HTTP {
		o.checker.Add(c.URI, c.Interval, c.Threshold, health.HTTP(c.URI, c.StatusCode, c.Timeout, http.Header(c.Headers)))
	}
	for _, c := range h.TCP {
		o.checker.Add(c.Addr, c.Interval, c.Threshold, health.TCP(c.Addr, c.Timeout))
	}
	o.debug["/debug/health"] = o.checker
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	o.checker.Start(cctx)
	o.stop = append(o.stop, func(context.Context) error { cancel(); return nil })
	return o, nil
}

// apply sets the registry options observability owns.
func (o *observability) apply(opts *registry.Options) {
	opts.Observe = o.observe
	opts.Health = o.checker.Err
	opts.AccessLogDisabled = o.quiet
}

// watchStorage exposes reg's cache counts as metrics.
func (o *observability) watchStorage(reg *storage.Registry) {
	if o.metrics != nil {
		o.metrics.WatchCaches(reg.CacheStats)
	}
}

// watchMirror exposes each mirror upstream's counters as metrics.
func (o *observability) watchMirror(m *mirror.Mirror) {
	if o.metrics == nil || m == nil {
		return
	}
	o.metrics.WatchMirrors(func() map[string]metrics.MirrorStats {
		out := map[string]metrics.MirrorStats{}
		for k, s := range m.Stats() {
			out[k] = metrics.MirrorStats(s)
		}
		return out
	})
}

// watchQueues exposes the notification queues' depths as metrics.
func (o *observability) watchQueues(stats func() map[string]metrics.QueueStats) {
	if o.metrics != nil {
		o.metrics.WatchQueues(stats)
	}
}

// shutdown stops the health checks and flushes spans not yet sent.
func (o *observability) shutdown(ctx context.Context) error {
	var errs []error
	for _, stop := range o.stop {
		errs = append(errs, stop(ctx))
	}
	return errors.Join(errs...)
}
