package swift

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

func TestConfigAcceptsDistributionKeys(t *testing.T) {
	c, err := newConfig(driver.Params{
		"authurl": "https://keystone.example.com/v3", "username": "u", "password": "p", "container": "reg",
		"tenant": 12345, "tenantid": "67890", "domain": "d", "region": "RegionOne", "authversion": "3",
		"endpointtype": "internal", "prefix": "/registry/", "insecureskipverify": "true", "chunksize": "5242880",
		"secretkey": "k", "accesskey": "a", "tempurlcontainerkey": true, "tempurlmethods": "get,head",
		"trustid": "t", "domainid": "di", "tenantdomain": "td", "tenantdomainid": "tdi",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.tenant != "12345" || c.tenantID != "67890" || c.prefix != "registry/" || c.ChunkSize != 5<<20 ||
		c.AuthVersion != 3 || !c.InsecureSkipVerify || c.TempURLMethods[0] != "GET" {
		t.Fatalf("config = %+v", *c)
	}
	c, err = newConfig(driver.Params{"authurl": "http://a/auth/v1.0", "username": "u", "password": "p", "container": "c"})
	if err != nil || c.ChunkSize != defaultChunkSize || c.prefix != "" {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
}

func TestConfigRejectsMistakesByKey(t *testing.T) {
	ok := driver.Params{"authurl": "http://a/auth/v1.0", "username": "u", "password": "p", "container": "c"}
	for _, tc := range []struct {
		key string
		val any
	}{
		{"authurl", ""}, {"authurl", "keystone"}, {"username", ""}, {"password", ""}, {"container", ""},
		{"chunksize", 1000}, {"authversion", 4}, {"endpointtype", "private"}, {"prefix", "a/../b"},
		{"tempurlmethods", "PUT"}, {"unknownkey", 1},
	} {
		t.Run(tc.key, func(t *testing.T) {
			p := driver.Params{"secretkey": "k"}
			for k, v := range ok {
				p[k] = v
			}
			p[tc.key] = tc.val
			if _, err := newConfig(p); err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("newConfig with %s=%v = %v, want an error naming it", tc.key, tc.val, err)
			}
		})
	}
}
