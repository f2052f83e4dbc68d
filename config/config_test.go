package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
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
		{"gc.graceperiod", c.Storage.GC.GracePeriod, time.Hour},
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
  gc: {graceperiod: 30m}
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
    certificate: /c.pem
    key: /k.pem
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
		{"gc.graceperiod", c.Storage.GC.GracePeriod, 30 * time.Minute},
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
		{"unknown top-level key", minimal + "htp:\n  addr: :5000\n",
			[]string{`config.yml:5: htp: unknown key (accepted: `}},
		{"unknown nested key", minimal + "http:\n  adr: :5000\n",
			[]string{`config.yml:6: http.adr: unknown key (accepted: addr, `}},
		{"wrong type", minimal + "http:\n  relativeurls: often\n",
			[]string{`config.yml:6: http.relativeurls: expected a boolean, got "often"`}},
		{"wrong type in a list item", minimal + "notifications:\n  endpoints:\n    - name: a\n      url: http://a.example.com\n      threshold: lots\n",
			[]string{`config.yml:9: notifications.endpoints[0].threshold: expected an integer, got "lots"`}},
		{"invalid duration", minimal + "http:\n  draintimeout: soon\n",
			[]string{`config.yml:6: http.draintimeout: expected a duration such as "10s" or "24h", got "soon"`}},
		{"invalid duration in storage", minimal + "  maintenance:\n    uploadpurging:\n      age: a week\n",
			[]string{`config.yml:7: storage.maintenance.uploadpurging.age: expected a duration`}},
		{"negative gc grace period", minimal + "  gc:\n    graceperiod: -1h\n",
			[]string{`config.yml:6: storage.gc.graceperiod: must not be negative`}},
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
		{"tls key without certificate", minimal + "http:\n  tls:\n    key: /k.pem\n",
			[]string{`config.yml:6: http.tls.certificate: required when http.tls.key is set`}},
		{"reporting is gone", minimal + "reporting:\n  bugsnag: {apikey: x}\n",
			[]string{`config.yml:5: reporting: bugsnag and newrelic reporting were removed`}},
		{"same key twice", minimal + "http:\n  addr: a\n  addr: b\n",
			[]string{`config.yml:7: http.addr: key given twice`}},
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

func TestParseReadsBackendTimeouts(t *testing.T) {
	c := mustParse(t, minimal+"berth:\n  storage:\n    timeouts:\n      metadata: 3s\n      write: 4m\n",
		"REGISTRY_BERTH_STORAGE_TIMEOUTS_COMMIT=10m")
	want := StorageTimeouts{Metadata: 3 * time.Second, Write: 4 * time.Minute, Commit: 10 * time.Minute}
	if got := c.Berth.Storage.Timeouts; got != want {
		t.Fatalf("timeouts %+v, want %+v", got, want)
	}
}
