package storage

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// raceTree is a store where an image was pushed and deleted long ago: its
// blobs are unreferenced but still linked in "app", so an online
// collection deletes them. A second, untagged image is there too.
type raceTree struct {
	drv   driver.Driver
	gone  *image
	loose *image
}

func buildRaceTree(t *testing.T, d driver.Driver) *raceTree {
	t.Helper()
	reg := New(d, Options{DeleteEnabled: true}, nil)
	app := reg.Repository("app")
	gone, loose := newImage(t, "gone"), newImage(t, "loose")
	gone.push(t, app, "v1")
	if err := app.DeleteManifest(context.Background(), gone.digest); err != nil {
		t.Fatal(err)
	}
	loose.push(t, app, loose.digest.String())
	return &raceTree{drv: d, gone: gone, loose: loose}
}

// onlineRun collects the store as a separate process would: everything is
// older than the grace period, and at the given stage the hook runs.
func onlineRun(t *testing.T, d driver.Driver, untagged bool, at string, hook func()) (GCResult, error) {
	t.Helper()
	gc := New(d, Options{DeleteEnabled: true}, nil)
	return gc.GarbageCollect(context.Background(), GCOptions{
		Online: true, GracePeriod: time.Hour, DeleteUntagged: untagged,
		Now: func() time.Time { return time.Now().Add(48 * time.Hour) },
		stage: func(s string) {
			if s == at {
				hook()
			}
		},
	})
}

// wantNoDanglingManifest checks that every tag of repo resolves and every
// blob its manifest references is there, on a fresh view of the store.
func wantNoDanglingManifest(t *testing.T, d driver.Driver, repo string) {
	t.Helper()
	ctx := context.Background()
	r := New(d, Options{}, nil).Repository(repo)
	tags, _, err := r.Tags(ctx, -1, "")
	if err != nil && !isErr(err, ErrNameUnknown) {
		t.Fatal(err)
	}
	for _, tag := range tags {
		m, err := r.GetManifest(ctx, tag)
		if err != nil {
			t.Errorf("tag %s: %v", tag, err)
			continue
		}
		doc, _, err := parseManifest(m.MediaType, m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range append(doc.Layers, *doc.Config) {
			if _, err := r.StatBlob(ctx, l.Digest); err != nil {
				t.Errorf("tag %s references %s: %v", tag, l.Digest, err)
			}
		}
	}
}

// TestGCOnlineWriterAndCollectorNeverBothProceed runs a writer at each
// stage of an online collection, on content the collection would delete:
// before the tombstones the collection must keep the content, after them
// the writer must be refused and take back what it linked.
func TestGCOnlineWriterAndCollectorNeverBothProceed(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		stage    string
		untagged bool
		write    func(srv *Registry, tr *raceTree) error
		// kept: the write succeeds and the collection keeps its content;
		// otherwise the write fails with ErrCollecting.
		kept bool
	}{
		{
			name: "manifest before the tombstones", stage: "marked", kept: true,
			write: func(srv *Registry, tr *raceTree) error {
				_, err := srv.Repository("app").PutManifest(ctx, "again", tr.gone.mediaType, tr.gone.payload)
				return err
			},
		},
		{
			name: "manifest after the tombstones", stage: "tombstoned",
			write: func(srv *Registry, tr *raceTree) error {
				_, err := srv.Repository("app").PutManifest(ctx, "again", tr.gone.mediaType, tr.gone.payload)
				return err
			},
		},
		{
			name: "manifest after the second listing", stage: "rescanned",
			write: func(srv *Registry, tr *raceTree) error {
				_, err := srv.Repository("app").PutManifest(ctx, "again", tr.gone.mediaType, tr.gone.payload)
				return err
			},
		},
		{
			name: "upload of identical content after the second listing", stage: "rescanned",
			write: func(srv *Registry, tr *raceTree) error {
				return pushImage(ctx, srv.Repository("app2"), tr.gone, "v1")
			},
		},
		{
			name: "mount after the second listing", stage: "rescanned",
			write: func(srv *Registry, tr *raceTree) error {
				_, err := srv.Repository("app3").MountBlob(ctx, MountSource{Repositories: []string{"app"}}, tr.gone.manifest.Layers[0].Digest)
				return err
			},
		},
		{
			name: "tag of an untagged manifest after the second listing", stage: "rescanned", untagged: true,
			write: func(srv *Registry, tr *raceTree) error {
				_, err := srv.Repository("app").PutManifest(ctx, "now-tagged", tr.loose.mediaType, tr.loose.payload)
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := buildRaceTree(t, openFilesystem(t, t.TempDir()))
			srv := New(tr.drv, Options{DeleteEnabled: true}, nil)
			// The server has the content cached, as after serving it.
			if _, err := srv.Repository("app").StatBlob(ctx, tr.gone.manifest.Layers[0].Digest); err != nil {
				t.Fatal(err)
			}
			var werr error
			_, err := onlineRun(t, tr.drv, tt.untagged, tt.stage, func() { werr = tt.write(srv, tr) })
			if err != nil {
				t.Fatalf("GarbageCollect: %v", err)
			}
			if tt.kept {
				if werr != nil {
					t.Fatalf("write before the tombstones: %v", werr)
				}
				if !blobExists(t, srv, tr.gone.manifest.Layers[0].Digest) {
					t.Error("the collection deleted a blob a manifest written during the run references")
				}
			} else if !errors.Is(werr, ErrCollecting) {
				t.Fatalf("write = %v, want ErrCollecting", werr)
			}
			for _, repo := range []string{"app", "app2", "app3"} {
				wantNoDanglingManifest(t, tr.drv, repo)
			}
			fresh := New(tr.drv, Options{}, nil)
			for _, repo := range []string{"app2", "app3"} {
				if _, err := fresh.Repository(repo).StatBlob(ctx, tr.gone.manifest.Layers[0].Digest); err == nil && !tt.kept {
					t.Errorf("%s still links a collected blob", repo)
				}
			}
			if _, err := tr.drv.Stat(ctx, gcRoot+"/tombstones"); !isNotFound(err) {
				t.Errorf("tombstones left after the run: %v", err)
			}
			if _, _, cur, err := currentClaim(ctx, tr.drv, gcLeaseDir); err != nil || cur.live(time.Now(), leaseSkew) {
				t.Errorf("lease still held after the run: %+v, %v", cur, err)
			}
		})
	}
}

// TestStaleCachesAfterACollectionElsewhere: a server whose caches still
// describe what another process collected refuses a manifest that needs
// it, and forgets it once it sees the new generation.
func TestStaleCachesAfterACollectionElsewhere(t *testing.T) {
	ctx := context.Background()
	tr := buildRaceTree(t, openFilesystem(t, t.TempDir()))
	refs := []digest.Digest{tr.gone.manifest.Config.Digest, tr.gone.manifest.Layers[0].Digest, tr.gone.manifest.Layers[1].Digest}
	// Two servers have everything the manifest references cached.
	servers := []*Registry{New(tr.drv, Options{}, nil), New(tr.drv, Options{}, nil)}
	for _, srv := range servers {
		srv.checkGeneration(ctx)
		for _, b := range refs {
			if _, err := srv.Repository("app").StatBlob(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if res, err := onlineRun(t, tr.drv, false, "", nil); err != nil || res.Blobs == 0 {
		t.Fatalf("GarbageCollect = %+v, %v; want blobs deleted", res, err)
	}

	_, err := servers[0].Repository("app").PutManifest(ctx, "again", tr.gone.mediaType, tr.gone.payload)
	wantErr(t, err, ErrManifestBlobUnknown)
	wantNoDanglingManifest(t, tr.drv, "app")

	srv := servers[1]
	if _, err := srv.Repository("app").StatBlob(ctx, refs[0]); err != nil {
		t.Fatalf("before the generation is read, the cache answers: %v", err)
	}
	srv.checkGeneration(ctx)
	for _, b := range refs {
		_, err = srv.Repository("app").StatBlob(ctx, b)
		wantErr(t, err, ErrBlobUnknown)
	}
}

// TestTombstonesCountOnlyWhileTheirLeaseLives: a collection that died
// leaves tombstones; writers ignore them.
func TestTombstonesCountOnlyWhileTheirLeaseLives(t *testing.T) {
	ctx := context.Background()
	content := []byte("a blob a dead collection tombstoned")
	d := digest.FromBytes(content)
	lease := func(id string, expires time.Time) []byte {
		b, _ := json.Marshal(leaseRecord{Owner: id, Host: "elsewhere", Expires: expires})
		return b
	}
	tests := []struct {
		name  string
		lease []byte // nil: none
		want  error
	}{
		{"no lease", nil, nil},
		{"lease expired", lease("dead", time.Now().Add(-time.Hour)), nil},
		{"another collection's lease", lease("other", time.Now().Add(time.Hour)), nil},
		{"its collection's live lease", lease("dead", time.Now().Add(time.Hour)), ErrCollecting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drv := openFilesystem(t, t.TempDir())
			reg := New(drv, Options{}, nil)
			pushBlob(t, reg.Repository("a"), content)
			if err := driver.PutContent(ctx, drv, tombstonePath("dead", blobTombstonePath(d)), []byte("dead")); err != nil {
				t.Fatal(err)
			}
			if tt.lease != nil {
				if err := driver.PutContent(ctx, drv, leaseClaimPath(gcLeaseDir, 1), tt.lease); err != nil {
					t.Fatal(err)
				}
			}
			_, err := reg.Repository("b").MountBlob(ctx, MountSource{Repositories: []string{"a"}}, d)
			if tt.want == nil && err != nil {
				t.Fatalf("mount = %v, want success", err)
			}
			if tt.want != nil {
				wantErr(t, err, tt.want)
			}
		})
	}
}

func TestGCLease(t *testing.T) {
	ctx := context.Background()
	t.Run("refused while another collection runs", func(t *testing.T) {
		tr := buildRaceTree(t, openFilesystem(t, t.TempDir()))
		var second error
		_, err := onlineRun(t, tr.drv, false, "tombstoned", func() {
			_, second = New(tr.drv, Options{}, nil).GarbageCollect(ctx, GCOptions{})
		})
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, second, ErrGCRunning)
	})
	t.Run("a collection that lost its lease deletes nothing", func(t *testing.T) {
		tr := buildRaceTree(t, openFilesystem(t, t.TempDir()))
		before := tree(t, tr.drv)
		// A term shorter than the skew is over as soon as it starts.
		_, err := New(tr.drv, Options{}, nil).GarbageCollect(ctx, GCOptions{leaseTerm: time.Second})
		if err == nil {
			t.Fatal("GarbageCollect succeeded without a lease")
		}
		after := tree(t, tr.drv)
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("%s deleted without a lease", p)
			}
		}
	})
}

// cutOff is a driver whose writes of gc lease claims fail while cut is
// set: the collector's view of a network partition, or of a process too
// frozen to renew.
type cutOff struct {
	driver.Driver
	cut *atomic.Bool
}

func (c cutOff) blocked(p string) error {
	if c.cut.Load() && strings.HasPrefix(p, gcLeaseDir+"/") {
		return errors.New("partitioned from the store")
	}
	return nil
}

func (c cutOff) Writer(ctx context.Context, p string, app bool) (driver.FileWriter, error) {
	if err := c.blocked(p); err != nil {
		return nil, err
	}
	return c.Driver.Writer(ctx, p, app)
}

func (c cutOff) Create(ctx context.Context, p string, b []byte) error {
	if err := c.blocked(p); err != nil {
		return err
	}
	return driver.Create(ctx, c.Driver, p, b)
}

// TestGCLeaseThatLapsedStaysDead: a collection that could not renew its
// lease until it lapsed must delete nothing when it can again, though a
// writer relied on the lapse to link what it had tombstoned, and must not
// take the lease back from a collection that started meanwhile.
func TestGCLeaseThatLapsedStaysDead(t *testing.T) {
	ctx := context.Background()
	const term, skew = 2 * time.Second, 200 * time.Millisecond
	tr := buildRaceTree(t, openFilesystem(t, t.TempDir()))
	var cut atomic.Bool
	collector := New(cutOff{tr.drv, &cut}, Options{DeleteEnabled: true, LeaseSkew: skew}, nil)
	writer := New(tr.drv, Options{LeaseSkew: skew}, nil)
	var writeErr, secondErr error
	var second *fence
	_, err := collector.GarbageCollect(ctx, GCOptions{
		Online: true, GracePeriod: time.Hour, leaseTerm: term,
		Now: func() time.Time { return time.Now().Add(48 * time.Hour) },
		stage: func(s string) {
			if s != "rescanned" {
				return
			}
			cut.Store(true)
			// Past the lease's expiry and the skew others honour: the
			// tombstones are dead to everyone but the collector.
			time.Sleep(term + 2*skew)
			_, writeErr = writer.Repository("app").PutManifest(ctx, "again", tr.gone.mediaType, tr.gone.payload)
			second, secondErr = acquireFence(ctx, tr.drv, time.Hour, skew)
			cut.Store(false)
			// Long enough for the collector's renewals to run again.
			time.Sleep(term / 2)
		},
	})
	if writeErr != nil {
		t.Fatalf("a write after the lease lapsed was refused: %v", writeErr)
	}
	if err == nil {
		t.Error("the collection whose lease lapsed finished without an error")
	}
	wantNoDanglingManifest(t, tr.drv, "app")
	for _, l := range tr.gone.manifest.Layers {
		if _, err := tr.drv.Stat(ctx, blobDataPath(l.Digest)); err != nil {
			t.Errorf("layer %s of the manifest written after the lapse: %v", l.Digest, err)
		}
	}
	if secondErr != nil {
		t.Fatalf("a second collection could not take the lapsed lease: %v", secondErr)
	}
	_, _, cur, err := currentClaim(ctx, tr.drv, gcLeaseDir)
	if err != nil || cur.Owner != second.id() || !cur.live(time.Now(), skew) {
		t.Errorf("the second collection's lease is %+v (%v), want it held by %s", cur, err, second.id())
	}
	second.lease.abandon()
}
