package metrics

import (
	"github.com/berth-registry/berth/storage"
	"github.com/prometheus/client_golang/prometheus"
	"time"
)

// WatchCaches exposes the counts stats returns at every scrape (pass a
// storage.Registry's CacheStats) as registry_storage_cache_total{cache,
// type} with type Request, Hit and Miss (the hit ratio is Hit / Request),
// and registry_storage_cache_entries{cache}. Call it once.
func (m *Metrics) WatchCaches(stats func() map[string]storage.CacheStats) {
	m.reg.MustRegister(&cacheCollector{
		stats: stats,
		total: prometheus.NewDesc(namespace+"_storage_cache_total",
			"Lookups in one of the storage caches, by cache and type (Request, Hit, Miss).",
			[]string{"cache", "type"}, nil),
		entries: prometheus.NewDesc(namespace+"_storage_cache_entries",
			"Entries one of the storage caches holds.",
			[]string{"cache"}, nil),
	})
}

type cacheCollector struct {
	stats          func() map[string]storage.CacheStats
	total, entries *prometheus.Desc
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.total
	ch <- c.entries
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(s.Hits+s.Misses), name, "Request")
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(s.Hits), name, "Hit")
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(s.Misses), name, "Miss")
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Entries), name)
	}
}

// QueueStats is what one notification endpoint's queue reports.
type QueueStats struct {
	// Pending is the number of events queued and not yet delivered.
	Pending int
	// Delivered and Failed count events answered 2xx and failed delivery
	// attempts (each retry counts).
	Delivered, Failed uint64
	// Dropped counts events removed undelivered, by their action.
	Dropped map[string]uint64
	// LastErrorAt is when the latest failure happened; zero if none has.
	LastErrorAt time.Time
}

// WatchQueues exposes, at every scrape, each notification endpoint's queue
// as stats returns it by endpoint name:
// registry_notifications_{pending,delivered_total,failed_total,last_error_timestamp_seconds}{endpoint}
// and registry_notifications_dropped_total{endpoint,action}.
// Call it once.
func (m *Metrics) WatchQueues(stats func() map[string]QueueStats) {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_notifications_"+name, help, []string{"endpoint"}, nil)
	}
	m.reg.MustRegister(&queueCollector{
		stats:     stats,
		pending:   desc("pending", "Events queued for a notification endpoint and not yet delivered."),
		delivered: desc("delivered_total", "Events a notification endpoint answered with a 2xx."),
		failed:    desc("failed_total", "Failed delivery attempts to a notification endpoint; each retry counts."),
		dropped: prometheus.NewDesc(namespace+"_notifications_dropped_total",
			"Events removed undelivered, by action: pulls first when the spool was full, then the oldest of the others.",
			[]string{"endpoint", "action"}, nil),
		lastError: desc("last_error_timestamp_seconds", "When delivery to a notification endpoint last failed (Unix time); absent if never."),
	})
}

type queueCollector struct {
	stats                                          func() map[string]QueueStats
	pending, delivered, failed, dropped, lastError *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.delivered, c.failed, c.dropped, c.lastError} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending), name)
		ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(s.Delivered), name)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(s.Failed), name)
		for action, n := range s.Dropped {
			ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), name, action)
		}
		if !s.LastErrorAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastError, prometheus.GaugeValue, float64(s.LastErrorAt.UnixNano())/1e9, name)
		}
	}
}

// MirrorStats are one mirror upstream's counters (storage/mirror.Stats).
type MirrorStats struct {
	Hits, Misses, BytesFetched, Errors, StaleServes, Evicted int64
}

// WatchMirrors exposes, at every scrape, each upstream's counters as
// stats returns them by upstream:
// registry_mirror_{hits,misses,fetched_bytes,errors,stale_serves,evicted}_total{upstream}.
// Call it once.
func (m *Metrics) WatchMirrors(stats func() map[string]MirrorStats) {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_mirror_"+name+"_total", help, []string{"upstream"}, nil)
	}
	m.reg.MustRegister(&mirrorCollector{stats: stats, descs: [6]*prometheus.Desc{
		desc("hits", "Pulls a mirror answered from its cache."),
		desc("misses", "Pulls a mirror fetched from its upstream."),
		desc("fetched_bytes", "Bytes a mirror read from its upstream."),
		desc("errors", "Upstream calls that failed (unreachable, timed out, 5xx)."),
		desc("stale_serves", "Answers from the cache that could not be revalidated with the upstream."),
		desc("evicted", "Cached manifests and blobs removed by the TTL."),
	}})
}

type mirrorCollector struct {
	stats func() map[string]MirrorStats
	descs [6]*prometheus.Desc
}

func (c *mirrorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *mirrorCollector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.stats() {
		for i, v := range []int64{s.Hits, s.Misses, s.BytesFetched, s.Errors, s.StaleServes, s.Evicted} {
			ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, float64(v), name)
		}
	}
}
