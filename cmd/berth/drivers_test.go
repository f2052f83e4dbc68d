package main

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/internal/release"
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
		"gcs":   "golang.org/x/oauth2/google",
		"s3":    "github.com/aws/aws-sdk-go-v2/service/s3",
		"swift": "github.com/ncw/swift/",
	}
	clouds := cloudDrivers()
	if got := slices.Sorted(maps.Keys(sdks)); !slices.Equal(got, clouds) {
		t.Fatalf("the test knows the SDKs of %v; config.Drivers has the cloud drivers %v", got, clouds)
	}
	// What `make build OMIT=...` passes to go build.
	out, err := exec.Command("make", "-s", "-n", "-C", "../..", "build", "OMIT="+strings.Join(clouds, " ")).Output()
	if err != nil {
		t.Fatalf("make -n build: %v", err)
	}
	m := regexp.MustCompile(`-tags (\S+)`).FindSubmatch(out)
	if want := omitTags(clouds...); m == nil || string(m[1]) != want {
		t.Fatalf("make build OMIT=%q builds with %q, want -tags %s", strings.Join(clouds, " "), m, want)
	}

	deps := func(omit ...string) string {
		tags := omitTags(omit...)
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
	// The gcs driver speaks the JSON API itself: Google's client library
	// would bring parts of gRPC, OpenTelemetry's SDK, S2A and a second
	// auth library into every build, about 5 MiB of memory at rest
	// (benchmark row 9).
	full := deps()
	for _, pkg := range []string{"cloud.google.com/go/storage\n", "google.golang.org/api/", "cloud.google.com/go/auth\n"} {
		if strings.Contains(full, "\n"+pkg) {
			t.Errorf("the release build links %s", strings.TrimSpace(pkg))
		}
	}
	all := deps(clouds...)
	for _, d := range clouds {
		if pkg, _ := linked(all, d); pkg {
			t.Errorf("built without every cloud driver: %s linked", d)
		}
	}
	for _, mod := range []string{"github.com/aws/", "github.com/Azure/", "cloud.google.com/", "google.golang.org/api/", "golang.org/x/oauth2/", "github.com/ncw/"} {
		if strings.Contains(all, "\n"+mod) {
			t.Errorf("built without every cloud driver: packages of %s still linked", mod)
		}
	}
}

// omitTags are the release build's tags plus those leaving out omit.
func omitTags(omit ...string) string {
	tags := release.BuildTags
	for _, d := range omit {
		tags += "," + omitTagPrefix + d
	}
	return tags
}

// TestOmittedDriverIsRefusedAtStart builds Berth without the cloud
// drivers and gives it a config naming one: serve and config check must
// both refuse it, saying where it is set and which tag left it out, and
// version must list what the build has.
func TestOmittedDriverIsRefusedAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds berth")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-tags", omitTags(cloudDrivers()...), "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte("version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := cfg + ":3: storage.s3: this build of Berth leaves out the s3 driver (build tag berth_no_s3)"
	for _, args := range [][]string{{"serve", cfg}, {"config", "check", cfg}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), want) {
			t.Errorf("berth %s: %v, output:\n%s\nwant exit 1 and %q", strings.Join(args, " "), err, out, want)
		}
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.Contains(string(out), "storage drivers: filesystem, inmemory\n") {
		t.Errorf("berth version: %v, %q; want the two drivers left", err, out)
	}
}
