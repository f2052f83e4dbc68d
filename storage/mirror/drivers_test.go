package mirror_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"

	_ "github.com/berth-registry/berth/storage/driver/s3"
)

// The TTL state is kept through the driver API alone: eviction works the
// same on an object store and in memory as on the filesystem.
func TestTTLEvictionOnOtherDrivers(t *testing.T) {
	up, uc := startUpstream(t)
	for _, tc := range []struct {
		name string
		open func(t *testing.T) driver.Driver
	}{
		{"inmemory", func(*testing.T) driver.Driver { return inmemory.New() }},
		{"s3 (MinIO)", func(t *testing.T) driver.Driver {
			m := testenv.StartMinIO(t)
			d, err := driver.Open(context.Background(), "s3", driver.Params{
				"accesskey": m.AccessKey, "secretkey": m.SecretKey, "region": m.Region, "regionendpoint": m.Endpoint,
				"forcepathstyle": true, "secure": false, "bucket": m.Bucket(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "drivers/app"
			img := uc.push(t, repo, "v1", randomBytes(300<<10))
			u := basicUpstream(up)
			u.TTL = time.Hour
			d := tc.open(t)
			first := startMirrorOn(t, d, u)
			first.get(t, "/v2/"+repo+"/manifests/v1")
			if status, _, _ := first.get(t, "/v2/"+repo+"/blobs/"+img.layers[0].String()); status != http.StatusOK {
				t.Fatalf("fill: %d", status)
			}
			first.m.Wait()
			again := startMirrorOn(t, d, u) // a restart over the same storage
			ctx := context.Background()
			if n, err := again.m.Evict(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 2 {
				t.Fatalf("evict: %d entries, %v; want the manifest and the blob", n, err)
			}
			if _, err := again.reg.Repository(repo).StatBlob(ctx, img.layers[0]); !errors.Is(err, storage.ErrBlobUnknown) {
				t.Fatalf("blob after eviction: %v", err)
			}
			status, _, body := again.get(t, "/v2/"+repo+"/blobs/"+img.layers[0].String())
			if status != http.StatusOK || digest.FromBytes(body) != img.layers[0] {
				t.Fatalf("refetch: %d", status)
			}
		})
	}
}
