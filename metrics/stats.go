package metrics

import (
	"github.com/berth-registry/berth/storage"
	"github.com/prometheus/client_golang/prometheus"
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
}

// WatchQueues exposes, at every scrape, the depth of each notification
// endpoint's queue that stats returns by endpoint name, as
// registry_notifications_pending{endpoint}. Call it once.
func (m *Metrics) WatchQueues(stats func() map[string]QueueStats) {
	m.reg.MustRegister(&queueCollector{
		stats: stats,
		pending: prometheus.NewDesc(namespace+"_notifications_pending",
			"Events queued for a notification endpoint and not yet delivered.",
			[]string{"endpoint"}, nil),
	})
}

type queueCollector struct {
	stats   func() map[string]QueueStats
	pending *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.pending }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending), name)
	}
}
