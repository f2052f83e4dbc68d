package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/notifications"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/mirror"
)

// setupMirror returns what the API serves: reg itself, or, with a proxy
// section or berth.mirrors, a pull-through mirror over it whose eviction
// runs until ctx ends.
func setupMirror(ctx context.Context, cfg *config.Config, reg *storage.Registry, events registry.EventSink, log *slog.Logger) (registry.Store, *mirror.Mirror, error) {
	ups := mirrorUpstreams(cfg)
	if len(ups) == 0 {
		return reg, nil, nil
	}
	opts := mirror.Options{Upstreams: ups, Log: log}
	if events != nil {
		opts.Fill = fillEvents(events, log)
	}
	m, err := mirror.New(reg, opts)
	if err != nil {
		return nil, nil, err
	}
	if m.Evicting() {
		go m.Run(ctx, m.EvictInterval())
	}
	for _, u := range ups {
		log.Info("mirroring", "upstream", u.RemoteURL, "prefix", u.Prefix, "ttl", u.TTL.String())
	}
	return m, m, nil
}

// mirrorUpstreams turns the proxy section, or berth.mirrors, into the
// mirror's upstreams; berth.proxy gives the defaults.
func mirrorUpstreams(cfg *config.Config) []mirror.Upstream {
	bp := cfg.Berth.Proxy
	freshness := func(own *time.Duration) time.Duration {
		f := own
		if f == nil {
			f = bp.Freshness
		}
		switch {
		case f == nil:
			return 0 // the mirror's default
		case *f == 0:
			return -1 // ask the upstream every time
		}
		return *f
	}
	timeout := func(own time.Duration) time.Duration {
		if own > 0 {
			return own
		}
		return bp.Timeout
	}
	var ups []mirror.Upstream
	if px := cfg.Proxy; px.RemoteURL != "" {
		u := mirror.Upstream{RemoteURL: px.RemoteURL, Freshness: freshness(nil), Timeout: timeout(0)}
		if px.TTL != nil {
			u.TTL = *px.TTL
		}
		if px.CacheWriteTimeout != nil {
			u.WriteTimeout = *px.CacheWriteTimeout
		}
		u.Credentials = credentials(px.RemoteURL, px.Username, px.Password, "", px.Exec)
		ups = append(ups, u)
	}
	for _, mc := range cfg.Berth.Mirrors {
		u := mirror.Upstream{Prefix: mc.Prefix, RemoteURL: mc.RemoteURL, Freshness: freshness(mc.Freshness), Timeout: timeout(mc.Timeout)}
		if mc.TTL != nil {
			u.TTL = *mc.TTL
		}
		u.Credentials = credentials(mc.RemoteURL, mc.Username, mc.Password, mc.PasswordFile, mc.Exec)
		ups = append(ups, u)
	}
	return ups
}

// credentials picks how an upstream is logged in to: a credential
// helper, a password file, a password, or not at all.
func credentials(remote, user, password, passwordFile string, exec *config.Exec) mirror.Credentials {
	switch {
	case exec != nil:
		h := &mirror.Helper{Command: exec.Command, ServerURL: remote}
		if exec.Lifetime != nil {
			h.Lifetime = *exec.Lifetime
		}
		return h
	case passwordFile != "":
		return mirror.PasswordFile{Username: user, Path: passwordFile}
	case user != "" || password != "":
		return mirror.Static{Username: user, Password: password}
	}
	return nil
}

// fillEvents publishes a fill event for each piece of content a mirror
// stored, marked with the action "fill" and the upstream.
func fillEvents(events registry.EventSink, log *slog.Logger) func(context.Context, mirror.Filled) {
	return func(ctx context.Context, f mirror.Filled) {
		mt := f.Descriptor.MediaType
		if !f.Manifest {
			mt = notifications.MediaTypeBlob
		}
		ev := notifications.Event{
			Action: notifications.ActionFill,
			Target: notifications.Target{
				Descriptor: v1.Descriptor{MediaType: mt, Digest: f.Descriptor.Digest, Size: f.Descriptor.Size},
				Length:     f.Descriptor.Size,
				Repository: f.Repository,
				Tag:        f.Tag,
				Upstream:   f.Upstream,
			},
			Request: notifications.RequestRecord{Method: http.MethodGet},
		}
		if err := events.Publish(ctx, ev); err != nil {
			log.Error("event publish failed", "repo", f.Repository, "action", ev.Action, "error", err)
		}
	}
}
