package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/internal/listener"
	"github.com/berth-registry/berth/internal/logbuf"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
)

// defaultDrainTimeout is how long in-flight requests may run after a
// shutdown signal when http.draintimeout is not set.
const defaultDrainTimeout = 30 * time.Second

// maxHeaderBytes bounds a request's headers: a bearer token with many
// scopes (tens of KiB) fits, while a client can no longer send a megabyte
// of headers, Go's default, on every request (every pull's User-Agent and
// Host go into its event). A request over it is answered 431 by net/http.
const maxHeaderBytes = 64 << 10

// logFlushDelay is how late a log line below warning level may reach
// stderr.
const logFlushDelay = 10 * time.Millisecond

func serve(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	cfg, err := loadConfig(args, environ)
	if err != nil {
		return err
	}
	// The access log is a line per request: batched, it costs one write
	// per logFlushDelay under load instead of one per request. Warnings
	// and errors still go out at once.
	logOut := logbuf.New(stderr, logFlushDelay)
	defer logOut.Close()
	log := slog.New(logOut.Urgent(newLogger(logOut, cfg.Log).Handler(), slog.LevelWarn))
	for _, w := range cfg.Warnings {
		log.Warn("configuration", "warning", w)
	}
	st, err := prepare(cfg, log)
	if err != nil {
		return err
	}
	d, err := openDriver(ctx, cfg)
	if err != nil {
		return err
	}
	if d, err = applyStorageMiddleware(ctx, cfg, d, log); err != nil {
		return err
	}
	obs, err := setupObservability(ctx, cfg, d, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := obs.shutdown(sctx); err != nil {
			log.Warn("observability shutdown", "error", err)
		}
	}()
	shared, err := openSharedCache(ctx, cfg, log)
	if err != nil {
		return err
	}
	sopts := storageOptions(cfg)
	// A read-only server writes nothing, the catalog index's build
	// included; the collection it stands aside for reconciles the index.
	sopts.NoCatalogBuild = cfg.Storage.Maintenance.ReadOnly.Enabled
	if shared != nil {
		defer shared.Close()
		sopts.Shared = shared
		obs.checker.AddAdvisory("redis", 0, 0, shared.Check)
	}
	reg := storage.New(obs.driver, sopts, log)
	obs.watchStorage(reg)
	opts := registryOptions(cfg)
	obs.apply(&opts)
	opts.Authorize = st.authorize
	events, closeEvents, err := setupNotifications(ctx, cfg, log)
	if err != nil {
		return err
	}
	// Deferred after the observability shutdown, so it runs before it and
	// after the HTTP server has drained: no request can publish any more.
	defer func() {
		if err := closeEvents(context.Background()); err != nil {
			log.Warn("notifications shutdown", "error", err)
		}
	}()
	if events != nil {
		opts.Events, opts.EventReferences = events, cfg.Notifications.Events.IncludeReferences
		obs.watchQueues(notificationStats(events))
	}
	store, mir, err := setupMirror(ctx, cfg, reg, opts.Events, log)
	if err != nil {
		return err
	}
	obs.watchMirror(mir)
	handler := registry.New(store, opts, log)
	startUploadPurger(ctx, cfg, reg, log)

	ln, err := listen(cfg.HTTP)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if cfg.HTTP.Secret == "" {
		log.Warn("http.secret is not set: upload URLs are not signed; set the same secret on every instance sharing this storage")
	}
	if cfg.Auth.Type() == "" && !isLoopback(ln.Addr()) {
		log.Warn("no auth configured and listening beyond loopback: anyone who can reach this address can push", "addr", ln.Addr().String())
	}

	errc := make(chan error, 2)
	if st.tls != nil {
		srv.TLSConfig = st.tls
		ln = tls.NewListener(ln, st.tls)
	} else if cfg.HTTP.H2C.Enabled {
		// HTTP/2 with prior knowledge on the plain listener, beside
		// HTTP/1.1, as Distribution's http.h2c.enabled does.
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "storage", driverName(cfg), "version", version)

	var debugSrv *http.Server
	if cfg.HTTP.Debug.Addr != "" {
		debugSrv = &http.Server{Addr: cfg.HTTP.Debug.Addr, Handler: debugMux(obs.debug), ReadHeaderTimeout: 30 * time.Second}
		go func() { errc <- debugSrv.ListenAndServe() }()
		log.Info("debug server", "addr", cfg.HTTP.Debug.Addr)
	}

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
	case <-ctx.Done():
	}

	drain := cfg.HTTP.DrainTimeout
	if drain <= 0 {
		drain = defaultDrainTimeout
	}
	log.Info("shutting down", "draintimeout", drain.String())
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if debugSrv != nil {
		_ = debugSrv.Shutdown(sctx)
	}
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running after the drain timeout are cut off.
		_ = srv.Close()
		return fmt.Errorf("shutdown after %s: %w", drain, err)
	}
	reg.Drain(sctx)
	log.Info("stopped")
	return nil
}

func registryOptions(cfg *config.Config) registry.Options {
	return registry.Options{
		Prefix:            cfg.HTTP.Prefix,
		Host:              cfg.HTTP.Host,
		RelativeURLs:      cfg.HTTP.RelativeURLs,
		ReadOnly:          cfg.Storage.Maintenance.ReadOnly.Enabled,
		RedirectDisabled:  cfg.Storage.Redirect.Disable,
		Secret:            cfg.HTTP.Secret,
		Headers:           http.Header(cfg.HTTP.Headers),
		CatalogMaxEntries: cfg.Catalog.MaxEntries,
		TagsMax:           cfg.Tags.MaxTags,
		BodyIdleTimeout:   cfg.Berth.HTTP.BodyIdleTimeout,
		TrustedProxies:    cfg.Berth.HTTP.Proxies(),
	}
}

func listen(h config.HTTP) (net.Listener, error) {
	network := h.Net
	if network == "" {
		network = "tcp"
	}
	if network == "unix" {
		// A stale socket from a killed process would block the bind.
		_ = os.Remove(h.Addr)
	}
	ln, err := net.Listen(network, h.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr: %w", err)
	}
	return listener.Wrap(ln), nil
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return true // unix sockets are local
	}
	return tcp.IP.IsLoopback()
}

func driverName(cfg *config.Config) string {
	name, _ := cfg.Storage.Driver()
	return name
}

// debugMux serves pprof and the extra handlers (health, metrics) on the
// debug address, never on the registry's own.
func debugMux(extra map[string]http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	for p, h := range extra {
		mux.Handle(p, h)
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
