package mirror_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/berth-registry/berth/storage/mirror"
)

// holdingDriver holds every write to a path containing hold until
// release is closed.
type holdingDriver struct {
	driver.Driver
	hold     string
	held     chan struct{} // closed at the first held write
	heldOnce sync.Once
	release  chan struct{}
	released atomic.Bool
}

func (d *holdingDriver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	if strings.Contains(path, d.hold) {
		d.heldOnce.Do(func() { close(d.held) })
		<-d.release
	}
	return d.Driver.Writer(ctx, path, append)
}

func (d *holdingDriver) let() {
	if d.released.CompareAndSwap(false, true) {
		close(d.release)
	}
}

// A client is answered with the manifest once it is fetched and checked,
// not once storage has synced it; a request that comes while it is being
// stored waits for the store rather than fetching again, and finds it
// stored.
func TestManifestAnsweredBeforeItIsStored(t *testing.T) {
	up, uc := startUpstream(t)
	img := uc.push(t, "early/app", "v1", randomBytes(1000))
	hd := &holdingDriver{Driver: inmemory.New(), hold: img.manifest.Encoded(), held: make(chan struct{}), release: make(chan struct{})}
	// Only so that the test ends when the store is (wrongly) waited for.
	fallback := time.AfterFunc(10*time.Second, hd.let)
	defer fallback.Stop()
	defer hd.let()
	mr := startMirrorOn(t, hd, basicUpstream(up))

	status, _, body := mr.get(t, "/v2/early/app/manifests/v1")
	if hd.released.Load() {
		t.Fatal("the manifest was answered only once storage had written it")
	}
	if status != http.StatusOK || !bytes.Equal(body, img.payload) {
		t.Fatalf("manifest: %d %s", status, body)
	}
	<-hd.held
	second := make(chan int, 1)
	go func() {
		status, _, body := mr.get(t, "/v2/early/app/manifests/v1")
		if !bytes.Equal(body, img.payload) {
			status = -1
		}
		second <- status
	}()
	hd.let()
	if got := <-second; got != http.StatusOK {
		t.Fatalf("second request while storing: %d", got)
	}
	mr.m.Wait()
	if n := up.Requests(http.MethodGet, "/v2/early/app/manifests/v1"); n != 1 {
		t.Fatalf("upstream served the manifest %d times, want 1", n)
	}
	if m, err := mr.reg.Repository("early/app").GetManifest(context.Background(), "v1"); err != nil || m.Digest != img.manifest {
		t.Fatalf("stored: %v %v", m.Digest, err)
	}
}

// A manifest that storage would refuse is refused to the client too,
// though the client is answered before the store: what is served is
// what storage accepts.
func TestInvalidUpstreamManifestIsNotServed(t *testing.T) {
	for _, tc := range []struct {
		name, mediaType, payload string
	}{
		{"not json", "application/vnd.oci.image.manifest.v1+json", "not a manifest"},
		{"unknown media type", "application/x-nonsense", `{"schemaVersion":2}`},
		{"schema 1", "application/vnd.docker.distribution.manifest.v1+json", `{"schemaVersion":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v2/bad/app/manifests/v1" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", tc.mediaType)
				_, _ = w.Write([]byte(tc.payload))
			}))
			defer upstream.Close()
			mr := startMirror(t, "", mirror.Upstream{RemoteURL: upstream.URL})
			status, _, body := mr.get(t, "/v2/bad/app/manifests/v1")
			if status == http.StatusOK {
				t.Fatalf("served an invalid manifest: %s", body)
			}
			mr.m.Wait()
			if _, err := mr.reg.Repository("bad/app").GetManifest(context.Background(), "v1"); err == nil {
				t.Fatal("stored an invalid manifest")
			}
		})
	}
}

// While a fetched blob waits to be written to storage, it is served from
// the fetch: more clients get it whole and the upstream is asked once.
func TestBlobServedFromTheFetchWhileItsStoreWaits(t *testing.T) {
	up, uc := startUpstream(t)
	layer := randomBytes(300 << 10)
	img := uc.push(t, "early/blob", "v1", layer)
	hd := &holdingDriver{Driver: inmemory.New(), hold: "/_uploads/", held: make(chan struct{}), release: make(chan struct{})}
	defer hd.let()
	mr := startMirrorOn(t, hd, basicUpstream(up))
	path := "/v2/early/blob/blobs/" + img.layers[0].String()
	for i := range 3 {
		status, _, body := mr.get(t, path)
		if status != http.StatusOK || !bytes.Equal(body, layer) {
			t.Fatalf("pull %d: %d, %d bytes", i, status, len(body))
		}
		if i == 0 {
			<-hd.held // the store has started, and waits
		}
	}
	hd.let()
	mr.m.Wait()
	// Distribution logs a response once sent: wait for the first line.
	for range 100 {
		if up.Requests(http.MethodGet, path) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := up.Requests(http.MethodGet, path); n != 1 {
		t.Fatalf("upstream served the blob %d times, want 1", n)
	}
	if _, err := mr.reg.Repository("early/blob").StatBlob(context.Background(), img.layers[0]); err != nil {
		t.Fatalf("not stored: %v", err)
	}
}
