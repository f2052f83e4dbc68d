package metrics

import "github.com/prometheus/client_golang/prometheus"

// ConfigNoEffect exposes the configuration keys present that Berth
// accepts and ignores, one series each with the value 1, so a fleet's
// dashboards can find the instances whose configuration asks for
// something they do not do.
func (m *Metrics) ConfigNoEffect(keys []string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "berth", Subsystem: "config", Name: "noeffect_keys",
		Help: "Configuration keys present that are accepted for compatibility and have no effect in Berth, by key path.",
	}, []string{"key"})
	for _, k := range keys {
		g.WithLabelValues(k).Set(1)
	}
	m.reg.MustRegister(g)
}
