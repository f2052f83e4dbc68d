package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

const minimal = `version: 0.1
storage:
  filesystem:
    rootdirectory: /data
`

func mustParse(t *testing.T, data string, env ...string) *Config {
	t.Helper()
	c, err := Parse("config.yml", []byte(data), env)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return c
}

func TestParseAppliesDistributionDefaults(t *testing.T) {
	c := mustParse(t, minimal)
	up := c.Storage.Maintenance.UploadPurging
	checks := []struct {
		name      string
		got, want any
	}{
		{"log.level", c.Log.Level, "info"},
		{"log.formatter", c.Log.Formatter, "text"},
		{"uploadpurging.enabled", up.Enabled, true},
		{"uploadpurging.age", up.Age, 168 * time.Hour},
		{"uploadpurging.interval", up.Interval, 24 * time.Hour},
		{"gc.graceperiod", c.Berth.Storage.GC.GracePeriod, time.Hour},
		{"delete.enabled", c.Storage.Delete.Enabled, false},
		{"http.net", c.HTTP.Net, "tcp"},
		{"prometheus.path", c.HTTP.Debug.Prometheus.Path, "/metrics"},
		{"catalog.maxentries", c.Catalog.MaxEntries, 1000},
		{"tags.maxtags", c.Tags.MaxTags, 1000},
		{"health.storagedriver.interval", c.Health.StorageDriver.Interval, 10 * time.Second},
		{"platforms", c.Validation.Manifests.Indexes.Platforms, "all"},
		{"auth", c.Auth.Type(), ""},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseReadsEverySection(t *testing.T) {
	c := mustParse(t, `version: "0.1"
log:
  level: DEBUG
  formatter: json
  fields: {service: registry}
  accesslog: {disabled: true}
storage:
  s3:
    bucket: b
    secretkey: s
  delete: {enabled: true}
  redirect: {disable: true}
  cache: {blobdescriptor: redis}
  tag: {concurrencylimit: 8}
  maintenance:
    uploadpurging: {enabled: false, age: 1h, interval: 2h, dryrun: true}
    readonly: {enabled: true}
auth:
  htpasswd: {realm: basic, path: /auth/htpasswd}
http:
  addr: :5000
  prefix: /reg/
  host: https://registry.example.com
  secret: s3cret
  relativeurls: true
  draintimeout: 60s
  headers: {X-Content-Type-Options: [nosniff]}
  debug: {addr: "127.0.0.1:5001", prometheus: {enabled: true}}
  tls:
    clientcas: [/ca.pem]
    minimumtls: tls1.3
    ciphersuites: [TLS_AES_128_GCM_SHA256]
    letsencrypt: {cachefile: /le, email: a@b.c, hosts: [r.example.com]}
  http2: {disabled: true}
  h2c: {enabled: true}
notifications:
  events: {includereferences: true}
  endpoints:
    - name: hook
      url: https://hooks.example.com/e
      headers: {Authorization: [Bearer x]}
      timeout: 1s
      threshold: 10
      backoff: 1s
      ignoredmediatypes: [application/octet-stream]
      ignore: {mediatypes: [a/b], actions: [pull]}
redis:
  addrs: [localhost:6379]
  password: pw
  db: 1
  dialtimeout: 10ms
  pool: {maxidle: 16, maxactive: 64, idletimeout: 300s}
  tls: {enabled: true, rootcas: [/ca.pem]}
health:
  storagedriver: {enabled: true, threshold: 3}
  file: [{file: /down}]
  http: [{uri: http://x.example.com/}]
  tcp: [{addr: redis:6379, timeout: 3s}]
proxy:
  remoteurl: https://registry-1.docker.io
  username: u
  password: p
validation:
  disabled: false
  manifests:
    urls: {allow: ['^https?://([^/]+\.)*example\.com/'], deny: ['^https?://www\.example\.com/']}
    indexes:
      platforms: List
      platformlist: [{architecture: amd64, os: linux}]
berth:
  storage:
    gc: {graceperiod: 30m}
`)
	name, params := c.Storage.Driver()
	checks := []struct {
		name      string
		got, want any
	}{
		{"log.level lower-cased", c.Log.Level, "debug"},
		{"log.fields", c.Log.Fields, map[string]any{"service": "registry"}},
		{"driver", name, "s3"},
		{"driver params raw", params, driver.Params{"bucket": "b", "secretkey": "s"}},
		{"uploadpurging", c.Storage.Maintenance.UploadPurging, UploadPurging{Age: time.Hour, Interval: 2 * time.Hour, DryRun: true}},
		{"readonly", c.Storage.Maintenance.ReadOnly.Enabled, true},
		{"tag", c.Storage.Tag.ConcurrencyLimit, 8},
		{"gc.graceperiod", c.Berth.Storage.GC.GracePeriod, 30 * time.Minute},
		{"auth", *c.Auth.Htpasswd, Htpasswd{Realm: "basic", Path: "/auth/htpasswd"}},
		{"draintimeout", c.HTTP.DrainTimeout, time.Minute},
		{"headers", c.HTTP.Headers, map[string][]string{"X-Content-Type-Options": {"nosniff"}}},
		{"clientauth default", c.HTTP.TLS.ClientAuth, "require-and-verify-client-cert"},
		{"letsencrypt hosts", c.HTTP.TLS.LetsEncrypt.Hosts, []string{"r.example.com"}},
		{"h2c", c.HTTP.H2C.Enabled, true},
		{"endpoint", c.Notifications.Endpoints[0].Ignore.Actions, []string{"pull"}},
		{"endpoint backoff", c.Notifications.Endpoints[0].Backoff, time.Second},
		{"redis pool", c.Redis.Pool, RedisPool{MaxIdle: 16, MaxActive: 64, IdleTimeout: 300 * time.Second}},
		{"redis dialtimeout", c.Redis.DialTimeout, 10 * time.Millisecond},
		{"health http status default", c.Health.HTTP[0].StatusCode, 200},
		{"health tcp interval default", c.Health.TCP[0].Interval, 10 * time.Second},
		{"proxy ttl default", *c.Proxy.TTL, 168 * time.Hour},
		{"platforms lower-cased", c.Validation.Manifests.Indexes.Platforms, "list"},
		{"platformlist", c.Validation.Manifests.Indexes.PlatformList, []Platform{{Architecture: "amd64", OS: "linux"}}},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseShortForms(t *testing.T) {
	c := mustParse(t, "version: 0.1\nstorage: inmemory\nauth: none\n")
	if name, params := c.Storage.Driver(); name != "inmemory" || len(params) != 0 {
		t.Errorf("driver %s %v, want inmemory with no params", name, params)
	}
	if c.Auth.Type() != "none" {
		t.Errorf("auth %q, want none", c.Auth.Type())
	}
	c = mustParse(t, "version: 0.1\nstorage:\n  inmemory:\n")
	if name, _ := c.Storage.Driver(); name != "inmemory" {
		t.Errorf("driver %s, want inmemory from a null section", name)
	}
}

func TestParseRefusesWithKeyPathAndLine(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string // each a line of the error, in order
	}{
		{"wrong type", minimal + "http:\n  relativeurls: often\n",
			[]string{`config.yml:6: http.relativeurls: expected a boolean, got "often"`}},
		{"wrong type in a list item", minimal + "notifications:\n  endpoints:\n    - name: a\n      url: http://a.example.com\n      threshold: lots\n",
			[]string{`config.yml:9: notifications.endpoints[0].threshold: expected an integer, got "lots"`}},
		{"invalid duration", minimal + "http:\n  draintimeout: soon\n",
			[]string{`config.yml:6: http.draintimeout: expected a duration such as "10s" or "24h", got "soon"`}},
		{"invalid duration in storage", minimal + "  maintenance:\n    uploadpurging:\n      age: a week\n",
			[]string{`config.yml:7: storage.maintenance.uploadpurging.age: expected a duration`}},
		{"negative gc grace period", minimal + "berth:\n  storage:\n    gc:\n      graceperiod: -1h\n",
			[]string{`config.yml:8: berth.storage.gc.graceperiod: must not be negative`}},
		{"negative gc grace period, old spelling", minimal + "  gc:\n    graceperiod: -1h\n",
			[]string{`config.yml:6: storage.gc.graceperiod: must not be negative`}},
		{"gc in both places", minimal + "  gc:\n    graceperiod: 1m\nberth:\n  storage:\n    gc:\n      graceperiod: 2m\n",
			[]string{`config.yml:5: storage.gc: set both here and in berth.storage.gc`}},
		{"negative backend timeout", minimal + "berth:\n  storage:\n    timeouts:\n      read: -1s\n",
			[]string{`config.yml:8: berth.storage.timeouts.read: must not be negative`}},
		{"unknown backend timeout", minimal + "berth:\n  storage:\n    timeouts:\n      stat: 1s\n",
			[]string{`config.yml:8: berth.storage.timeouts.stat: unknown key (accepted: commit, metadata, read, write)`}},
		{"unknown storage middleware", minimal + "middleware:\n  storage:\n    - name: redirect\n      options: {baseurl: https://a.example.com}\n    - name: fastly\n",
			[]string{`config.yml:9: middleware.storage[1].name: unknown storage middleware "fastly" (Berth has cloudfront, redirect, rewrite)`}},
		{"registry middleware", minimal + "middleware:\n  registry:\n    - name: redirect\n",
			[]string{`config.yml:7: middleware.registry[0].name: unknown registry middleware "redirect": Berth has none (storage middleware: cloudfront, redirect, rewrite)`}},
		{"two storage drivers", minimal + "  s3:\n    bucket: b\n",
			[]string{`config.yml:2: storage: more than one storage driver configured (filesystem, s3)`}},
		{"no storage driver", "version: 0.1\nstorage:\n  delete:\n    enabled: true\n",
			[]string{`config.yml:2: storage: no storage driver configured`}},
		{"no storage section", "version: 0.1\n",
			[]string{`storage: required: configure exactly one storage driver`}},
		{"unknown storage driver", "version: 0.1\nstorage:\n  oss: {}\n",
			[]string{`config.yml:3: storage.oss: unknown storage driver`}},
		{"driver section not a map", "version: 0.1\nstorage:\n  filesystem: /data\n",
			[]string{`config.yml:3: storage.filesystem: expected a map of driver parameters, got "/data"`}},
		{"missing version", "storage: inmemory\n", []string{`version: required`}},
		{"other version", "version: 0.2\nstorage: inmemory\n",
			[]string{`config.yml:1: version: unsupported version 0.2`}},
		{"invalid log level", minimal + "log:\n  level: verbose\n",
			[]string{`config.yml:6: log.level: invalid level "verbose"`}},
		{"invalid log formatter", minimal + "log:\n  formatter: xml\n",
			[]string{`config.yml:6: log.formatter: invalid formatter "xml"`}},
		{"two auth types", minimal + "auth:\n  none: {}\n  silly: {realm: r, service: s}\n",
			[]string{`config.yml:5: auth: more than one auth type configured (none, silly)`}},
		{"missing required auth keys", minimal + "auth:\n  htpasswd:\n    realm: r\n",
			[]string{`config.yml:6: auth.htpasswd.path: required`}},
		{"token needs a key source", minimal + "auth:\n  token: {realm: r, service: s, issuer: i}\n",
			[]string{`config.yml:6: auth.token.rootcertbundle: required unless jwks is set`}},
		{"endpoint needs a url", minimal + "notifications:\n  endpoints:\n    - name: a\n",
			[]string{`config.yml:7: notifications.endpoints[0].url: required`}},
		{"tls certificate and letsencrypt", minimal + "http:\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n    letsencrypt:\n      cachefile: /le\n",
			[]string{`config.yml:9: http.tls.letsencrypt: set either http.tls.certificate or http.tls.letsencrypt, not both`}},
		{"tls key without certificate", minimal + "http:\n  tls:\n    key: /k.pem\n",
			[]string{`config.yml:6: http.tls.certificate: required when http.tls.key is set`}},
		{"unknown key in the berth section", minimal + "berth:\n  storage:\n    gc:\n      graceperoid: 1h\n",
			[]string{`config.yml:8: berth.storage.gc.graceperoid: unknown key (accepted: graceperiod)`}},
		{"unknown middleware", minimal + "middleware:\n  registry:\n    - name: nosuch\n",
			[]string{`config.yml:7: middleware.registry[0].name: unknown registry middleware "nosuch": Berth has none`}},
		{"unknown storage middleware", minimal + "middleware:\n  storage:\n    - name: nosuch\n",
			[]string{`config.yml:7: middleware.storage[0].name: unknown storage middleware "nosuch" (Berth has cloudfront, redirect, rewrite)`}},
		{"wrong type in a no-effect section", minimal + "redis:\n  db: first\n",
			[]string{`config.yml:6: redis.db: expected an integer, got "first"`}},
		{"several problems at once", minimal + "http:\n  addr: 5\n  net: udp\n  relativeurls: x\nlog:\n  level: loud\n",
			[]string{
				`config.yml:8: http.relativeurls: expected a boolean, got "x"`,
				`config.yml:10: log.level: invalid level "loud"`,
				`config.yml:7: http.net: invalid network "udp"`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.yml", []byte(tt.data), nil)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse error %v, want an *Error", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d problems:\n%v\nwant %d", len(lines), err, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestParseYAMLSyntaxErrorNamesFile(t *testing.T) {
	_, err := Parse("bad.yml", []byte("version: 0.1\nstorage: [\n"), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "bad.yml: yaml: line ") {
		t.Errorf("error %v, want it to start with the file name and line", err)
	}
}

func TestLoadReadsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(minimal+"http:\n  addr: 5\n  relativeurls: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, nil)
	if err == nil || !strings.HasPrefix(err.Error(), path+":7: http.relativeurls") {
		t.Errorf("error %v, want it at %s:7", err, path)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v, want os.ErrNotExist", err)
	}
}

func TestDeprecatedKeysWarn(t *testing.T) {
	c := mustParse(t, minimal+"loglevel: debug\nvalidation:\n  enabled: true\n  disabled: false\n")
	if c.Log.Level != "debug" {
		t.Errorf("log.level %q, want debug from loglevel", c.Log.Level)
	}
	if len(c.Warnings) != 2 {
		t.Errorf("warnings %q, want one for loglevel and one for validation.enabled", c.Warnings)
	}
}

func TestWherePlacesDriverKeys(t *testing.T) {
	c := mustParse(t, "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    chunksize: lots\n", "REGISTRY_STORAGE_S3_REGION=eu-west-1")
	tests := map[string]string{
		"storage.s3.chunksize":  "config.yml:5",
		"storage.s3.region":     "environment variable REGISTRY_STORAGE_S3_REGION",
		"storage.s3.chunksize2": "config.yml:3", // the nearest section set
		"catalog.maxentries":    "",
	}
	for key, want := range tests {
		if got := c.Where(key); got != want {
			t.Errorf("Where(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestBerthSectionHoldsGC(t *testing.T) {
	tests := []struct {
		name, data string
		env        []string
		want       time.Duration
		warning    string
	}{
		{"berth section", minimal + "berth:\n  storage:\n    gc:\n      graceperiod: 30m\n", nil, 30 * time.Minute, ""},
		{"environment", minimal, []string{"REGISTRY_BERTH_STORAGE_GC_GRACEPERIOD=2h"}, 2 * time.Hour, ""},
		{"old spelling", minimal + "  gc:\n    graceperiod: 45m\n", nil, 45 * time.Minute, "storage.gc is deprecated"},
		{"old spelling from the environment", minimal, []string{"REGISTRY_STORAGE_GC_GRACEPERIOD=3h"}, 3 * time.Hour, "storage.gc is deprecated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.data, tt.env...)
			if got := c.Berth.Storage.GC.GracePeriod; got != tt.want {
				t.Errorf("graceperiod %v, want %v", got, tt.want)
			}
			found := tt.warning == ""
			for _, w := range c.Warnings {
				found = found || strings.Contains(w, tt.warning)
			}
			if !found {
				t.Errorf("warnings %q, want one containing %q", c.Warnings, tt.warning)
			}
		})
	}
}

func TestParseToleratesWhatDistributionTolerates(t *testing.T) {
	tests := []struct {
		name, data string
		warnings   []string
		check      func(*Config) error
	}{
		{"unknown top-level key", minimal + "delete:\n  enabled: true\n",
			[]string{UnknownKeyWarning + "delete"}, nil},
		{"unknown nested key", minimal + "http:\n  debug:\n    addr: :5001\n    prometheus:\n      disabled: true\n",
			[]string{UnknownKeyWarning + "http.debug.prometheus.disabled"}, nil},
		{"reporting", minimal + "reporting:\n  bugsnag:\n    apikey: k\n  newrelic:\n    licensekey: l\n",
			[]string{NoEffectWarning + "reporting"}, nil},
		{"compatibility", minimal + "compatibility:\n  schema1:\n    enabled: true\n",
			[]string{NoEffectWarning + "compatibility"}, nil},
		{"log hooks", minimal + "log:\n  hooks:\n    - type: mail\n      options: {smtp: {addr: 'm:25'}}\n",
			[]string{NoEffectWarning + "log.hooks"}, nil},
		{"unknown key inside a no-effect section", minimal + "log:\n  hooks:\n    - type: mail\n      options: {smtp: {addr: 'm:25', tls: true}}\n",
			[]string{UnknownKeyWarning + "log.hooks[0].options.smtp.tls", NoEffectWarning + "log.hooks"}, nil},
		{"same key twice, last wins", minimal + "http:\n  secret: a\n  secret: b\n",
			[]string{"http.secret is set twice (config.yml:6 and config.yml:7): the last one is used"},
			func(c *Config) error {
				if c.HTTP.Secret != "b" {
					return fmt.Errorf("http.secret %q, want the last, b", c.HTTP.Secret)
				}
				return nil
			}},
		{"harbor redis keys", minimal + "redis:\n  addr: r:6379\n  enableTLS: true\n  sentinelMasterSet: mymaster\n",
			nil,
			func(c *Config) error {
				if !c.Redis.TLS.Enabled || c.Redis.MasterName != "mymaster" {
					return fmt.Errorf("redis tls.enabled %v mastername %q, want true and mymaster", c.Redis.TLS.Enabled, c.Redis.MasterName)
				}
				return nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.data)
			for _, w := range tt.warnings {
				if !slices.ContainsFunc(c.Warnings, func(s string) bool { return strings.HasPrefix(s, w) }) {
					t.Errorf("warnings %q, want one starting %q", c.Warnings, w)
				}
			}
			if len(c.Warnings) != len(tt.warnings) {
				t.Errorf("warnings %q, want %d", c.Warnings, len(tt.warnings))
			}
			if tt.check != nil {
				if err := tt.check(c); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestParseReadsBackendTimeouts(t *testing.T) {
	c := mustParse(t, minimal+"berth:\n  storage:\n    timeouts:\n      metadata: 3s\n      write: 4m\n",
		"REGISTRY_BERTH_STORAGE_TIMEOUTS_COMMIT=10m")
	want := StorageTimeouts{Metadata: 3 * time.Second, Write: 4 * time.Minute, Commit: 10 * time.Minute}
	if got := c.Berth.Storage.Timeouts; got != want {
		t.Fatalf("timeouts %+v, want %+v", got, want)
	}
}
