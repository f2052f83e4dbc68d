package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/internal/release"
	"github.com/berth-registry/berth/storage/driver"
)

// cloudDrivers are the drivers a build tag may leave out: all but the
// two without an SDK.
func cloudDrivers() []string {
	return slices.DeleteFunc(slices.Clone(config.Drivers), func(d string) bool {
		return d == "filesystem" || d == "inmemory"
	})
}

// TestOmitTagLeavesOutTheDriverAndItsSDK lists the packages each omit tag
// links: the driver left out, and its SDK with it, while the others stay;
// with every tag, no cloud SDK at all. The Makefile's OMIT accepts the same
// names.
func TestOmitTagLeavesOutTheDriverAndItsSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	sdks := map[string]string{
		"azure": "github.com/Azure/azure-sdk-for-go/",
		"gcs":   "cloud.google.com/go/storage",
		"s3":    "github.com/aws/aws-sdk-go-v2/service/s3",
		"swift": "github.com/ncw/swift/",
	}
	clouds := cloudDrivers()
	if got := slices.Sorted(maps.Keys(sdks)); !slices.Equal(got, clouds) {
		t.Fatalf("the test knows the SDKs of %v; config.Drivers has the cloud drivers %v", got, clouds)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CLOUD_DRIVERS\s*:=\s*(.*)$`).FindSubmatch(mk)
	if m == nil || !slices.Equal(strings.Fields(string(m[1])), clouds) {
		t.Fatalf("Makefile CLOUD_DRIVERS = %q, want %v", m, clouds)
	}

	deps := func(omit ...string) string {
		tags := release.BuildTags
		for _, d := range omit {
			tags += "," + omitTagPrefix + d
		}
		out, err := exec.Command("go", "list", "-deps", "-tags", tags, ".").Output()
		if err != nil {
			t.Fatalf("go list -tags %s: %v", tags, err)
		}
		return string(out)
	}
	linked := func(list, d string) (driverPkg, sdk bool) {
		return strings.Contains(list, "/storage/driver/"+d+"\n"), strings.Contains(list, sdks[d])
	}
	for _, omit := range clouds {
		list := deps(omit)
		for _, d := range clouds {
			pkg, sdk := linked(list, d)
			if want := d != omit; pkg != want || sdk != want {
				t.Errorf("built with %s%s: driver %s linked %v, its SDK %v; want %v", omitTagPrefix, omit, d, pkg, sdk, want)
			}
		}
	}
	all := deps(clouds...)
	for _, d := range clouds {
		if pkg, sdk := linked(all, d); pkg || sdk {
			t.Errorf("built without every cloud driver: %s linked %v, its SDK %v", d, pkg, sdk)
		}
	}
}

// TestOmittedDriverIsNamedAtStart checks what a build without a driver
// says of a config that uses it: where it is set, that this build left it
// out, and the tag that did.
func TestOmittedDriverIsNamedAtStart(t *testing.T) {
	cfg, err := config.Parse("config.yml", []byte("version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = placeDriverError(cfg, "s3", fmt.Errorf("%w %q", driver.ErrUnknownDriver, "s3"))
	want := "config.yml:3: storage.s3: this build of Berth leaves out the s3 driver (build tag berth_no_s3); the release build has every driver"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
