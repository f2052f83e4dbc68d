package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

const fileWithFilesystem = `version: 0.1
storage:
  filesystem:
    rootdirectory: /data
    maxthreads: 50
  delete:
    enabled: true
http:
  addr: :5000
  tls:
    letsencrypt:
      cachefile: /le
      email: a@example.com
      hosts: [a.example.com]
notifications:
  endpoints:
    - name: one
      url: http://one.example.com/
`

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		got  func(c *Config) any
		want any
	}{
		{"scalar", []string{"REGISTRY_HTTP_ADDR=127.0.0.1:6000"},
			func(c *Config) any { return c.HTTP.Addr }, "127.0.0.1:6000"},
		{"new section", []string{"REGISTRY_LOG_LEVEL=debug"},
			func(c *Config) any { return c.Log.Level }, "debug"},
		{"value is YAML-typed", []string{"REGISTRY_HTTP_RELATIVEURLS=true", "REGISTRY_HTTP_DRAINTIMEOUT=45s"},
			func(c *Config) any { return []any{c.HTTP.RelativeURLs, c.HTTP.DrainTimeout} }, []any{true, 45 * time.Second}},
		{"case-insensitive match", []string{"REGISTRY_STORAGE_DELETE_ENABLED=false"},
			func(c *Config) any { return c.Storage.Delete.Enabled }, false},
		{"driver parameter", []string{"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/srv"},
			func(c *Config) any { _, p := c.Storage.Driver(); return p }, driver.Params{"rootdirectory": "/srv", "maxthreads": 50}},
		{"nested map value", []string{"REGISTRY_HTTP_HEADERS={X-Frame-Options: [DENY]}"},
			func(c *Config) any { return c.HTTP.Headers }, map[string][]string{"X-Frame-Options": {"DENY"}}},
		{"list value", []string{"REGISTRY_NOTIFICATIONS_ENDPOINTS=[{name: a, url: 'http://a.example.com'}, {name: b, url: 'http://b.example.com'}]"},
			func(c *Config) any {
				return []string{c.Notifications.Endpoints[0].Name, c.Notifications.Endpoints[1].Name}
			}, []string{"a", "b"}},
		{"list item by index", []string{"REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_0=b.example.com"},
			func(c *Config) any { return c.HTTP.TLS.LetsEncrypt.Hosts }, []string{"b.example.com"}},
		{"list item appended", []string{"REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_1=c.example.com"},
			func(c *Config) any { return c.HTTP.TLS.LetsEncrypt.Hosts }, []string{"a.example.com", "c.example.com"}},
		{"key in a list item", []string{"REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT=2s"},
			func(c *Config) any { return c.Notifications.Endpoints[0].Timeout }, 2 * time.Second},
		{"free-form map", []string{"REGISTRY_LOG_FIELDS_ENVIRONMENT=staging"},
			func(c *Config) any { return c.Log.Fields }, map[string]any{"environment": "staging"}},
		{"auth section", []string{"REGISTRY_AUTH_HTPASSWD_REALM=r", "REGISTRY_AUTH_HTPASSWD_PATH=/h"},
			func(c *Config) any { return *c.Auth.Htpasswd }, Htpasswd{Realm: "r", Path: "/h"}},
		{"switch driver drops the file's driver section", []string{
			"REGISTRY_STORAGE=s3", "REGISTRY_STORAGE_S3_BUCKET=b", "REGISTRY_STORAGE_S3_REGION=us-east-1"},
			func(c *Config) any { n, p := c.Storage.Driver(); return []any{n, p, c.Storage.Delete.Enabled} },
			[]any{"s3", driver.Params{"bucket": "b", "region": "us-east-1"}, true}},
		{"same driver keeps the file's section", []string{"REGISTRY_STORAGE=filesystem"},
			func(c *Config) any { n, p := c.Storage.Driver(); return []any{n, p} },
			[]any{"filesystem", driver.Params{"rootdirectory": "/data", "maxthreads": 50}}},
		{"whole storage section as YAML", []string{"REGISTRY_STORAGE={inmemory: {}}"},
			func(c *Config) any { n, _ := c.Storage.Driver(); return []any{n, c.Storage.Delete.Enabled} },
			[]any{"inmemory", false}},
		{"sorted, so the switch comes first whatever the order given", []string{
			"REGISTRY_STORAGE_INMEMORY_X=1", "REGISTRY_STORAGE=inmemory"},
			func(c *Config) any { _, p := c.Storage.Driver(); return p }, driver.Params{"x": 1}},
		// Kubernetes sets REGISTRY_PORT and friends for a service named
		// "registry"; Distribution ignores them with a warning, and so must we.
		{"variables matching no key are ignored with a warning", []string{
			"REGISTRY_PORT=tcp://10.0.0.1:5000", "REGISTRY_SERVICE_HOST=10.0.0.1", "OTHER=1",
			"REGISTRY_HTTP_NOPE=1", "REGISTRY_NOTIFICATIONS_ENDPOINTS_0_COLOUR=red"},
			func(c *Config) any { return c.Warnings }, []string{
				"ignoring environment variable REGISTRY_HTTP_NOPE: http has no key nope",
				"ignoring environment variable REGISTRY_NOTIFICATIONS_ENDPOINTS_0_COLOUR: notifications.endpoints[0] has no key colour",
				"ignoring environment variable REGISTRY_PORT: no configuration section port",
				"ignoring environment variable REGISTRY_SERVICE_HOST: no configuration section service",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, fileWithFilesystem, tt.env...)
			if got := tt.got(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestEnvOverridesAreCheckedLikeTheFile(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"wrong type", []string{"REGISTRY_HTTP_DRAINTIMEOUT=soon"},
			`environment variable REGISTRY_HTTP_DRAINTIMEOUT: http.draintimeout: expected a duration`},
		{"wrong type in a list item", []string{"REGISTRY_NOTIFICATIONS_ENDPOINTS_0_THRESHOLD=lots"},
			`environment variable REGISTRY_NOTIFICATIONS_ENDPOINTS_0_THRESHOLD: notifications.endpoints[0].threshold: expected an integer, got "lots"`},
		{"second driver without switching", []string{"REGISTRY_STORAGE_S3_BUCKET=b"},
			`config.yml:2: storage: more than one storage driver configured (filesystem, s3)`},
		{"index past the end", []string{"REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_5=x"},
			`environment variable REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_5: http.tls.letsencrypt.hosts: index 5 is past the end`},
		{"non-numeric index", []string{"REGISTRY_NOTIFICATIONS_ENDPOINTS_FIRST_URL=x"},
			`environment variable REGISTRY_NOTIFICATIONS_ENDPOINTS_FIRST_URL: notifications.endpoints: expected a list index`},
		{"invalid level", []string{"REGISTRY_LOG_LEVEL=loud"},
			`environment variable REGISTRY_LOG_LEVEL: log.level: invalid level "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.yml", []byte(fileWithFilesystem), tt.env)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestEnvReachesExistingKeysWithUnderscores(t *testing.T) {
	c := mustParse(t, "version: 0.1\nstorage:\n  azure:\n    max_retries: 3\n", "REGISTRY_STORAGE_AZURE_MAX_RETRIES=5")
	if _, p := c.Storage.Driver(); !reflect.DeepEqual(p, driver.Params{"max_retries": 5}) {
		t.Errorf("params %v, want max_retries 5", p)
	}
}
