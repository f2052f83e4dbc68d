package config

import (
	"strings"
	"testing"
)

func TestNotificationsSpoolDefaults(t *testing.T) {
	endpoint := `
notifications:
  endpoints:
    - name: hook
      url: https://hook.example.com/events
`
	tests := []struct {
		name, config string
		env          []string
		wantSpool    string
	}{
		{"beside the filesystem root", minimal + endpoint, nil, "/data/berth/notifications"},
		{"default filesystem root", "version: 0.1\nstorage: filesystem\n" + endpoint, nil, "/var/lib/registry/berth/notifications"},
		{"object store", "version: 0.1\nstorage:\n  s3:\n    bucket: b\n" + endpoint, nil, "/var/lib/berth/notifications"},
		{"set in the file", minimal + endpoint + "  spool: /spool\n", nil, "/spool"},
		{"set from the environment", minimal + endpoint, []string{"REGISTRY_NOTIFICATIONS_SPOOL=/env-spool"}, "/env-spool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.config, tt.env...)
			n := c.Notifications
			if n.Spool != tt.wantSpool || n.SpoolMaxBytes != 256<<20 {
				t.Errorf("spool %q, max %d; want %q, 256 MiB", n.Spool, n.SpoolMaxBytes, tt.wantSpool)
			}
			if mt := n.Endpoints[0].MediaType; mt != "application/vnd.docker.distribution.events.v2+json" {
				t.Errorf("mediatype %q, want Distribution 3's", mt)
			}
		})
	}
	if n := mustParse(t, minimal).Notifications; n.Spool != "" || n.SpoolMaxBytes != 0 {
		t.Errorf("without endpoints the spool keys stay unset, got %+v", n)
	}
}

func TestNotificationsRefusals(t *testing.T) {
	tests := []struct {
		name, section, wantKey string
	}{
		{"v3 media type", "  endpoints:\n    - {name: a, url: 'http://a/', mediatype: application/json}\n", "notifications.endpoints[0].mediatype"},
		{"duplicate names", "  endpoints:\n    - {name: a, url: 'http://a/'}\n    - {name: a, url: 'http://b/'}\n", "notifications.endpoints[1].name"},
		{"negative backoff", "  endpoints:\n    - {name: a, url: 'http://a/', backoff: -1s}\n", "notifications.endpoints[0].backoff"},
		{"negative cap", "  spoolmaxbytes: -1\n  endpoints:\n    - {name: a, url: 'http://a/'}\n", "notifications.spoolmaxbytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.yml", []byte(minimal+"notifications:\n"+tt.section), nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantKey) {
				t.Fatalf("error %v, want one about %s", err, tt.wantKey)
			}
		})
	}
	c := mustParse(t, minimal+"notifications:\n  endpoints:\n    - {name: a, url: 'http://a/', mediatype: application/vnd.docker.distribution.events.v1+json}\n")
	if mt := c.Notifications.Endpoints[0].MediaType; mt != "application/vnd.docker.distribution.events.v1+json" {
		t.Errorf("mediatype %q, want v1 kept", mt)
	}
}
