package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBerthHTTPKeys(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		env     []string
		idle    time.Duration
		proxies []netip.Prefix
	}{
		{"defaults", minimal, nil, DefaultBodyIdleTimeout, nil},
		{"from the file", minimal + "berth:\n  http:\n    bodyidletimeout: 5s\n    trustedproxies: [10.0.0.0/8, 192.168.1.7, '::1', 10.1.2.3/16]\n", nil,
			5 * time.Second, []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
				netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.1.0.0/16"),
			}},
		{"turned off", minimal + "berth:\n  http:\n    bodyidletimeout: 0s\n", nil, 0, nil},
		{"from the environment", minimal, []string{"REGISTRY_BERTH_HTTP_BODYIDLETIMEOUT=2m", "REGISTRY_BERTH_HTTP_TRUSTEDPROXIES=[172.16.0.0/12]"},
			2 * time.Minute, []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.data, tt.env...)
			if got := c.Berth.HTTP.BodyIdleTimeout; got != tt.idle {
				t.Errorf("bodyidletimeout = %v, want %v", got, tt.idle)
			}
			if got := c.Berth.HTTP.Proxies(); !reflect.DeepEqual(got, tt.proxies) {
				t.Errorf("trustedproxies = %v, want %v", got, tt.proxies)
			}
		})
	}
}

func TestBerthHTTPRefusals(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"negative idle timeout", minimal + "berth:\n  http:\n    bodyidletimeout: -1s\n",
			"berth.http.bodyidletimeout: must not be negative"},
		{"not a CIDR", minimal + "berth:\n  http:\n    trustedproxies: [10.0.0.0/8, proxy.example.com]\n",
			`berth.http.trustedproxies[1]: expected a CIDR such as 10.0.0.0/8 or an address, got "proxy.example.com"`},
		{"unknown key", minimal + "berth:\n  http:\n    trustedproxy: 10.0.0.1\n",
			"berth.http.trustedproxy: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.yml", []byte(tt.data), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestBerthStorageKeys(t *testing.T) {
	tests := []struct {
		name        string
		data        string
		env         []string
		lease, skew time.Duration
		content     int64
	}{
		{"defaults", minimal, nil, DefaultUploadLease, DefaultLeaseSkew, 0},
		{"from the file", minimal + "berth:\n  storage:\n    uploadlease: 10s\n    leaseskew: 2s\n    cache:\n      contentbytes: 1048576\n", nil, 10 * time.Second, 2 * time.Second, 1 << 20},
		{"from the environment", minimal, []string{"REGISTRY_BERTH_STORAGE_UPLOADLEASE=5m", "REGISTRY_BERTH_STORAGE_LEASESKEW=1m", "REGISTRY_BERTH_STORAGE_CACHE_CONTENTBYTES=2097152"}, 5 * time.Minute, time.Minute, 2 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.data, tt.env...)
			if got := c.Berth.Storage; got.UploadLease != tt.lease || got.LeaseSkew != tt.skew || got.Cache.ContentBytes != tt.content {
				t.Errorf("berth.storage = %+v, want uploadlease %v, leaseskew %v, cache.contentbytes %d", got, tt.lease, tt.skew, tt.content)
			}
		})
	}
}

func TestBerthStorageRefusals(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"lease under a second", minimal + "berth:\n  storage:\n    uploadlease: 500ms\n", "berth.storage.uploadlease: must be at least 1s"},
		{"no skew", minimal + "berth:\n  storage:\n    leaseskew: 0s\n", "berth.storage.leaseskew: must be positive and at most 1m0s"},
		{"skew past the gc lease", minimal + "berth:\n  storage:\n    leaseskew: 2m\n", "berth.storage.leaseskew: must be positive and at most 1m0s"},
		{"unknown key", minimal + "berth:\n  storage:\n    uploadleases: 1m\n", "berth.storage.uploadleases: unknown key"},
		{"negative content cache", minimal + "berth:\n  storage:\n    cache:\n      contentbytes: -1\n", "berth.storage.cache.contentbytes: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.yml", []byte(tt.data), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestBerthCatalogIndex: on unless turned off, and off beside Distribution
// (distributionuploads), whatever catalogindex says.
func TestBerthCatalogIndex(t *testing.T) {
	tests := []struct {
		name string
		data string
		env  []string
		on   bool
	}{
		{"default", minimal, nil, true},
		{"turned off", minimal + "berth:\n  storage:\n    catalogindex: false\n", nil, false},
		{"turned on", minimal + "berth:\n  storage:\n    catalogindex: true\n", nil, true},
		{"from the environment", minimal, []string{"REGISTRY_BERTH_STORAGE_CATALOGINDEX=false"}, false},
		{"beside Distribution", minimal + "berth:\n  storage:\n    distributionuploads: true\n", nil, false},
		{"beside Distribution, asked for", minimal + "berth:\n  storage:\n    distributionuploads: true\n    catalogindex: true\n", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustParse(t, tt.data, tt.env...).Berth.Storage.CatalogIndexOn(); got != tt.on {
				t.Errorf("CatalogIndexOn() = %v, want %v", got, tt.on)
			}
		})
	}
}
