package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/metrics"
	"github.com/berth-registry/berth/notifications"
	"github.com/berth-registry/berth/registry"
)

// setupNotifications opens the spool of every enabled endpoint and starts
// delivering what an earlier run left in it. It returns a nil sink when no
// endpoint is enabled. Pass the sink as registry.Options.Events (with
// EventReferences from notifications.events.includereferences) and call
// close after the HTTP server has stopped: events spooled but not yet
// delivered wait on disk for the next start.
func setupNotifications(_ context.Context, cfg *config.Config, log *slog.Logger) (registry.EventSink, func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	nc := cfg.Notifications
	var endpoints []notifications.EndpointConfig
	for _, e := range nc.Endpoints {
		if e.Disabled {
			log.Info("notification endpoint disabled", "endpoint", e.Name)
			continue
		}
		endpoints = append(endpoints, notifications.EndpointConfig{
			Name:              e.Name,
			URL:               e.URL,
			Headers:           http.Header(e.Headers),
			Timeout:           e.Timeout,
			Threshold:         e.Threshold,
			Backoff:           e.Backoff,
			IgnoredMediaTypes: append(append([]string(nil), e.IgnoredMediaTypes...), e.Ignore.MediaTypes...),
			IgnoredActions:    e.Ignore.Actions,
			MediaType:         e.MediaType,
		})
	}
	if len(endpoints) == 0 {
		return nil, noop, nil
	}
	n, err := notifications.New(notifications.Config{
		Source:        notifications.SourceRecord{Addr: sourceAddr(cfg.HTTP), InstanceID: notifications.NewID()},
		Spool:         nc.Spool,
		SpoolMaxBytes: nc.SpoolMaxBytes,
		Endpoints:     endpoints,
	}, log)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range n.Metrics() {
		// Headers are not logged: they usually carry a token.
		log.Info("notification endpoint", "endpoint", m.Name, "url", m.URL, "pending", m.Pending, "spool", nc.Spool)
	}
	closeFn := func(ctx context.Context) error {
		err := n.Close(ctx)
		for _, m := range n.Metrics() {
			if m.Pending > 0 {
				log.Info("notification events left in spool", "endpoint", m.Name, "pending", m.Pending)
			}
		}
		return err
	}
	return n, closeFn, nil
}

// notificationStats gives the metrics package each endpoint's queue
// depth, for obs.watchQueues; nil when sink is not a Notifier.
func notificationStats(sink registry.EventSink) func() map[string]metrics.QueueStats {
	n, ok := sink.(*notifications.Notifier)
	if !ok {
		return nil
	}
	return func() map[string]metrics.QueueStats {
		ms := n.Metrics()
		stats := make(map[string]metrics.QueueStats, len(ms))
		for _, m := range ms {
			stats[m.Name] = metrics.QueueStats{
				Pending: m.Pending, Delivered: m.Delivered, Failed: m.Failed,
				Dropped: m.DroppedByAction, LastErrorAt: m.LastErrorAt,
			}
		}
		return stats
	}
}

// sourceAddr is the source.addr of events, as Distribution fills it: this
// host's name and the port it listens on.
func sourceAddr(h config.HTTP) string {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	if h.Net == "unix" {
		return host
	}
	_, port, err := net.SplitHostPort(h.Addr)
	if err != nil || port == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}
