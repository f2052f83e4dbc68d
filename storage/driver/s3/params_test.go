package s3

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-registry/berth/storage/driver"
)

func base(extra driver.Params) driver.Params {
	p := driver.Params{"region": "us-east-1", "bucket": "b"}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func TestParamsRefused(t *testing.T) {
	tests := []struct {
		name   string
		params driver.Params
	}{
		{"chunksize under 5 MiB", base(driver.Params{"chunksize": 5<<20 - 1})},
		{"chunksize from env under 5 MiB", base(driver.Params{"chunksize": "1048576"})},
		{"multipartcopychunksize under 5 MiB", base(driver.Params{"multipartcopychunksize": 1 << 20})},
		{"negative multipartcopythresholdsize", base(driver.Params{"multipartcopythresholdsize": -1})},
		{"negative multipartcopymaxconcurrency", base(driver.Params{"multipartcopymaxconcurrency": -1})},
		{"unknown key", base(driver.Params{"chunk_size": 6 << 20})},
		{"no bucket", driver.Params{"region": "us-east-1"}},
		{"no region nor endpoint", driver.Params{"bucket": "b"}},
		{"access key without secret", base(driver.Params{"accesskey": "AKIA"})},
		{"unknown storage class", base(driver.Params{"storageclass": "GLACIER_DEEP"})},
		{"unknown acl", base(driver.Params{"objectacl": "everyone"})},
		{"unknown log level", base(driver.Params{"loglevel": "loud"})},
		{"bad redirect expiry", base(driver.Params{"redirectexpiry": "forever"})},
		{"redirect expiry over a week", base(driver.Params{"redirectexpiry": "169h"})},
		{"secure not a bool", base(driver.Params{"secure": "maybe"})},
		{"writeconcurrency 0 parts", base(driver.Params{"writeconcurrency": -1})},
		{"writeconcurrency over 64", base(driver.Params{"writeconcurrency": 65})},
		{"negative writememory", base(driver.Params{"writememory": -1})},
		{"readconcurrency 0 ranges", base(driver.Params{"readconcurrency": -1})},
		{"readconcurrency over 64", base(driver.Params{"readconcurrency": 65})},
		{"negative readmemory", base(driver.Params{"readmemory": -1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.params)
			if !errors.Is(err, ErrParams) {
				t.Fatalf("New err = %v, want ErrParams", err)
			}
		})
	}
}

func TestParamsDefaultsAndDistributionKeys(t *testing.T) {
	tests := []struct {
		name   string
		params driver.Params
		check  func(t *testing.T, c config)
	}{
		{"defaults", base(nil), func(t *testing.T, c config) {
			if c.chunkSize != 10<<20 || c.copyChunkSize != 32<<20 || c.copyThreshold != 32<<20 || c.copyParallel != 100 {
				t.Errorf("sizes = %d %d %d %d", c.chunkSize, c.copyChunkSize, c.copyThreshold, c.copyParallel)
			}
			if c.storageClass != types.StorageClassStandard || c.acl != "" || !c.secure || c.root != "" {
				t.Errorf("class %q acl %q secure %v root %q", c.storageClass, c.acl, c.secure, c.root)
			}
			if c.redirectExpiry != 20*time.Minute {
				t.Errorf("redirect expiry %v", c.redirectExpiry)
			}
		}},
		{"strings from environment overrides", base(driver.Params{
			"chunksize": "6291456", "secure": "false", "multipartcopythresholdsize": "0", "encrypt": "true",
		}), func(t *testing.T, c config) {
			if c.chunkSize != 6<<20 || c.secure || c.copyThreshold != 0 || !c.Encrypt {
				t.Errorf("chunk %d secure %v threshold %d encrypt %v", c.chunkSize, c.secure, c.copyThreshold, c.Encrypt)
			}
		}},
		{"storage class NONE sets none", base(driver.Params{"storageclass": "none"}), func(t *testing.T, c config) {
			if c.storageClass != "" {
				t.Errorf("storage class %q, want unset", c.storageClass)
			}
		}},
		{"keys are case-insensitive, YAML off is false", base(driver.Params{
			"RootDirectory": "/registry/", "loglevel": false, "ObjectACL": "bucket-owner-full-control", "v4auth": true,
		}), func(t *testing.T, c config) {
			if c.root != "registry/" || c.logMode != 0 || c.acl != types.ObjectCannedACLBucketOwnerFullControl {
				t.Errorf("root %q log %v acl %q", c.root, c.logMode, c.acl)
			}
		}},
		{"endpoint without region", driver.Params{"bucket": "b", "regionendpoint": "http://127.0.0.1:9000"}, func(t *testing.T, c config) {
			if c.Region != "us-east-1" {
				t.Errorf("region %q", c.Region)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(context.Background(), tt.params)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			tt.check(t, d.cfg)
		})
	}
}
