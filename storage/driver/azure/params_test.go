package azure

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

func TestConfigDefaultsAndDistributionKeys(t *testing.T) {
	base := func(extra driver.Params) driver.Params {
		p := driver.Params{"accountname": "acct", "accountkey": "a2V5", "container": "reg"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	tests := []struct {
		name  string
		in    driver.Params
		check func(*config) bool
	}{
		{"DefaultsMatchDistribution", base(nil), func(c *config) bool {
			return c.serviceURL == "https://acct.blob.core.windows.net" && c.credType == credSharedKey &&
				c.MaxRetries == 5 && c.RetryDelay == 100*time.Millisecond && c.root == "" &&
				c.ChunkSize == defaultChunkSize && c.RedirectExpiry == 20*time.Minute &&
				c.ReadConcurrency == 8 && c.readBuffers == 16
		}},
		{"ReadKeysFromEnvStrings", base(driver.Params{"readconcurrency": "3", "readmemory": "0"}), func(c *config) bool {
			return c.ReadConcurrency == 3 && c.readBuffers == 0
		}},
		{"RealmBuildsServiceURL", base(driver.Params{"realm": "core.chinacloudapi.cn"}), func(c *config) bool {
			return c.serviceURL == "https://acct.blob.core.chinacloudapi.cn"
		}},
		{"ServiceURLWins", base(driver.Params{"serviceurl": "http://127.0.0.1:10000/acct"}), func(c *config) bool {
			return c.serviceURL == "http://127.0.0.1:10000/acct"
		}},
		{"RootDirectorySlashesTrimmed", base(driver.Params{"rootdirectory": "/a/b/"}), func(c *config) bool {
			return c.root == "a/b/"
		}},
		{"V3RetryKeysFromEnvStrings", base(driver.Params{"max_retries": "-1", "retry_delay": "2s"}), func(c *config) bool {
			return c.MaxRetries == -1 && c.RetryDelay == 2*time.Second
		}},
		{"V2CopyPollKeys", base(driver.Params{"copy_status_poll_max_retry": 9, "copy_status_poll_delay": "1s"}), func(c *config) bool {
			return c.MaxRetries == 9 && c.RetryDelay == time.Second
		}},
		{"ClientSecret", driver.Params{"accountname": "acct", "container": "reg", "credentials": map[string]any{
			"type": "client_secret", "clientid": "c", "tenantid": "t", "secret": "s"}}, func(c *config) bool {
			return c.credType == credClientSecret
		}},
		{"DefaultCredentialsOldSpelling", driver.Params{"accountname": "acct", "container": "reg",
			"credentials": map[string]any{"type": "default"}}, func(c *config) bool {
			return c.credType == credDefault
		}},
		{"ConnectionStringNeedsNoAccount", driver.Params{"container": "reg",
			"connectionstring": "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/a;"}, func(c *config) bool {
			return c.serviceURL == ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newConfig(tc.in)
			if err != nil {
				t.Fatalf("newConfig: %v", err)
			}
			if !tc.check(c) {
				t.Fatalf("config = %+v", *c)
			}
		})
	}
}

func TestConfigRejectsMistakesByKey(t *testing.T) {
	tests := []struct {
		name    string
		in      driver.Params
		wantKey string
	}{
		{"NoContainer", driver.Params{"accountname": "a", "accountkey": "k"}, "container"},
		{"NoAccountName", driver.Params{"accountkey": "k", "container": "c"}, "accountname"},
		{"SharedKeyWithoutKey", driver.Params{"accountname": "a", "container": "c"}, "accountkey"},
		{"UnknownCredentialType", driver.Params{"accountname": "a", "container": "c", "credentials": map[string]any{"type": "sas"}}, "credentials.type"},
		{"ClientSecretWithoutSecret", driver.Params{"accountname": "a", "container": "c",
			"credentials": map[string]any{"type": "client_secret", "clientid": "c", "tenantid": "t"}}, "credentials.secret"},
		{"UnknownKey", driver.Params{"accountname": "a", "accountkey": "k", "container": "c", "bucket": "b"}, "bucket"},
		{"BadServiceURL", driver.Params{"accountname": "a", "accountkey": "k", "container": "c", "serviceurl": "ftp://x"}, "serviceurl"},
		{"TinyChunk", driver.Params{"accountname": "a", "accountkey": "k", "container": "c", "chunksize": 10}, "chunksize"},
		{"NoBlockInFlight", driver.Params{"accountname": "a", "accountkey": "k", "container": "c", "writeconcurrency": -1}, "writeconcurrency"},
		{"TooManyBlocksInFlight", driver.Params{"accountname": "a", "accountkey": "k", "container": "c", "writeconcurrency": 65}, "writeconcurrency"},
		{"NegativeWriteMemory", driver.Params{"accountname": "a", "accountkey": "k", "container": "c", "writememory": -1}, "writememory"},
		{"NoRangeInFlight", driver.Params{"accountname": "a", "accountkey": "k", "container": "c", "readconcurrency": -1}, "readconcurrency"},
		{"TooManyRangesInFlight", driver.Params{"accountname": "a", "accountkey": "k", "container": "c", "readconcurrency": 65}, "readconcurrency"},
		{"NegativeReadMemory", driver.Params{"accountname": "a", "accountkey": "k", "container": "c", "readmemory": -1}, "readmemory"},
		{"EscapingRoot", driver.Params{"accountname": "a", "accountkey": "k", "container": "c", "rootdirectory": "a/../b"}, "rootdirectory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newConfig(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.wantKey) {
				t.Fatalf("newConfig = %v, want an error naming %s", err, tc.wantKey)
			}
		})
	}
}

func TestBlockIDsRoundTripAndSortByIndex(t *testing.T) {
	a := blockID{kind: kindData, started: 1700000000, index: 2}
	b := blockID{kind: kindData, started: 1700000000, index: 10}
	if len(a.String()) != len(b.String()) {
		t.Fatal("block IDs of one write differ in length; Azure refuses that")
	}
	for _, id := range []blockID{a, b, {kind: kindEmpty, started: 1, index: 0}} {
		got, ok := parseBlockID(id.String())
		if !ok || got != id {
			t.Errorf("parseBlockID(%v) = %v, %v", id, got, ok)
		}
	}
	if _, ok := parseBlockID("Zm9yZWlnbg=="); ok {
		t.Error("a foreign block ID parsed")
	}
}
