package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
)

func TestSetupObservabilityFromConfig(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	root := filepath.Join(t.TempDir(), "data")
	tests := []struct {
		name        string
		yaml        string
		metricsPath string // "" when metrics are off
	}{
		{"metrics at a custom path", `
version: 0.1
log: {accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: ` + root + `}}
http:
  addr: 127.0.0.1:0
  debug: {addr: 127.0.0.1:0, prometheus: {enabled: true, path: /prom}}
health: {storagedriver: {enabled: true, threshold: 2}}
`, "/prom"},
		{"metrics off", `
version: 0.1
storage: {filesystem: {rootdirectory: ` + root + `}}
http: {addr: 127.0.0.1:0}
`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cfg, err := config.Parse("test", []byte(tt.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			name, params := cfg.Storage.Driver()
			d, err := driver.Open(ctx, name, params)
			if err != nil {
				t.Fatal(err)
			}
			o, err := setupObservability(ctx, cfg, d, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = o.shutdown(ctx) })

			reg := storage.New(o.driver, storage.Options{}, nil)
			o.watchStorage(reg)
			var opts registry.Options
			o.apply(&opts)
			if opts.AccessLogDisabled != cfg.Log.AccessLog.Disabled || opts.Health == nil {
				t.Errorf("options not applied: %+v", opts)
			}
			o.checker.RunOnce(ctx)
			if err := opts.Health(); err != nil {
				t.Errorf("healthy storage reported %v", err)
			}
			if _, ok := o.debug["/debug/health"]; !ok {
				t.Error("no /debug/health handler")
			}
			h, ok := o.debug[tt.metricsPath]
			if tt.metricsPath == "" {
				if ok || len(o.debug) != 1 || opts.Observe != nil {
					t.Errorf("metrics off, yet debug handlers %v, observer set %v", o.debug, opts.Observe != nil)
				}
				return
			}
			if !ok {
				t.Fatalf("no handler at %s: %v", tt.metricsPath, o.debug)
			}
			srv := httptest.NewServer(registry.New(reg, opts, nil))
			t.Cleanup(srv.Close)
			resp, err := http.Get(srv.URL + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.metricsPath, nil))
			body := rec.Body.String()
			for _, want := range []string{`registry_http_requests_total{code="200",handler="base",method="GET"} 1`, `registry_storage_cache_total`} {
				if !strings.Contains(body, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		})
	}
}
