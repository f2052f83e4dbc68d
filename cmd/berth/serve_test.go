package main

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/berth-registry/berth/config"
)

// TestRegistryOptionsCarryTheLimits checks that each limit read from the
// file reaches the HTTP API; the registry package's tests show what each
// one does there.
func TestRegistryOptionsCarryTheLimits(t *testing.T) {
	cfg, err := config.Parse("config.yml", []byte(`version: 0.1
storage: inmemory
catalog: {maxentries: 7}
tags: {maxtags: 9}
berth:
  http:
    bodyidletimeout: 3s
    trustedproxies: [10.0.0.0/8, 192.0.2.1]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := registryOptions(cfg)
	got := []any{opts.CatalogMaxEntries, opts.TagsMax, opts.BodyIdleTimeout, opts.TrustedProxies}
	want := []any{7, 9, 3 * time.Second, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("options %v, want %v", got, want)
	}
}

// TestStorageOptionsCarryTheLeases checks that berth.storage reaches the
// content model, whose tests show what the term, the skew and the content
// cache's budget do.
func TestStorageOptionsCarryTheLeases(t *testing.T) {
	cfg, err := config.Parse("config.yml", []byte(`version: 0.1
storage: inmemory
berth:
  storage:
    uploadlease: 7s
    leaseskew: 3s
    distributionuploads: true
    cache:
      contentbytes: 1048576
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := storageOptions(cfg)
	if opts.UploadLease != 7*time.Second || opts.LeaseSkew != 3*time.Second {
		t.Fatalf("storage options: uploadlease %v, leaseskew %v, want 7s, 3s", opts.UploadLease, opts.LeaseSkew)
	}
	if opts.ContentBytes != 1<<20 {
		t.Fatalf("storage options: content bytes %d, want 1 MiB", opts.ContentBytes)
	}
	if !opts.DistributionUploads {
		t.Fatal("berth.storage.distributionuploads did not reach the storage options")
	}
}
