package rediscache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"
)

func newCache(t *testing.T, opts *redis.UniversalOptions) *Cache {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, redis.NewUniversalClient(opts), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var layer = storage.SharedLinkKey{Repo: "fleet/app", Digest: digest.FromString("layer")}

// TestInvalidateReachesEveryInstance: an entry one instance put is found
// by another, and gone for both as soon as either invalidates it — also
// when the put raced the invalidation (read from storage before the
// delete, written to Redis after it).
func TestInvalidateReachesEveryInstance(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	a := newCache(t, &redis.UniversalOptions{Addrs: []string{srv.Addr}})
	b := newCache(t, &redis.UniversalOptions{Addrs: []string{srv.Addr}})
	target := layer.Digest

	gen, err := a.Begin(ctx, layer.Repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PutLink(ctx, gen, layer, target); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := b.Link(ctx, layer); err != nil || !ok || got != target {
		t.Fatalf("B.Link = %s, %v, %v; want what A put", got, ok, err)
	}
	if err := b.Invalidate(ctx, layer.Repo, layer); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.Link(ctx, layer); err != nil || ok {
		t.Fatalf("A.Link after B invalidated = %v, %v; want a miss", ok, err)
	}

	// A reader began before a delete and puts after it.
	gen, _ = a.Begin(ctx, layer.Repo)
	if err := b.Invalidate(ctx, layer.Repo, layer); err != nil {
		t.Fatal(err)
	}
	if err := a.PutLink(ctx, gen, layer, target); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Cache{"A": a, "B": b} {
		if _, ok, _ := c.Link(ctx, layer); ok {
			t.Errorf("%s answers a link put under the generation before the delete", name)
		}
	}

	// A collection (the global generation) forgets blob descriptors.
	gen, _ = a.Begin(ctx, "")
	if err := a.PutBlob(ctx, gen, target, storage.SharedBlob{Size: 5, ModTime: time.Unix(10, 0)}); err != nil {
		t.Fatal(err)
	}
	if bl, ok, err := b.Blob(ctx, target); err != nil || !ok || bl.Size != 5 || !bl.ModTime.Equal(time.Unix(10, 0)) {
		t.Fatalf("B.Blob = %+v, %v, %v", bl, ok, err)
	}
	if err := b.Invalidate(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Blob(ctx, target); ok {
		t.Error("a blob descriptor survived a collection's invalidation")
	}
}

// TestWritesDistributionsDescriptorKeys: Distribution's keys hold what it
// reads from them.
func TestWritesDistributionsDescriptorKeys(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	c := newCache(t, &redis.UniversalOptions{Addrs: []string{srv.Addr}})
	gen, _ := c.Begin(ctx, layer.Repo)
	if err := c.PutLink(ctx, gen, layer, layer.Digest); err != nil {
		t.Fatal(err)
	}
	gen, _ = c.Begin(ctx, "")
	if err := c.PutBlob(ctx, gen, layer.Digest, storage.SharedBlob{Size: 42}); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	if ok, err := rc.SIsMember(ctx, "repository::fleet/app::blobs", layer.Digest.String()).Result(); err != nil || !ok {
		t.Errorf("SISMEMBER repository::fleet/app::blobs = %v, %v", ok, err)
	}
	h, err := rc.HGetAll(ctx, "blobs::"+layer.Digest.String()).Result()
	if err != nil || h["digest"] != layer.Digest.String() || h["size"] != "42" || h["mediatype"] != blobMediaType {
		t.Errorf("HGETALL blobs::<digest> = %v, %v", h, err)
	}
	if mt, err := rc.HGet(ctx, "repository::fleet/app::blobs::"+layer.Digest.String(), "mediatype").Result(); err != nil || mt != blobMediaType {
		t.Errorf("repository-scoped mediatype = %q, %v", mt, err)
	}
}

// TestRedisGoingAwayFailsFastAndForgetsOnReturn freezes Redis: the cache
// reports itself unavailable (storage is read instead), and once Redis
// answers again it forgets every entry put before, since a delete may
// have gone unrecorded meanwhile.
func TestRedisGoingAwayFailsFastAndForgetsOnReturn(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	c := newCache(t, &redis.UniversalOptions{Addrs: []string{srv.Addr},
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
	gen, _ := c.Begin(ctx, layer.Repo)
	if err := c.PutLink(ctx, gen, layer, layer.Digest); err != nil {
		t.Fatal(err)
	}
	proc := srv.Process.Cmd.Process
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer proc.Signal(syscall.SIGCONT)
	if _, _, err := c.Link(ctx, layer); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Link with Redis frozen: %v, want ErrUnavailable", err)
	}
	if err := c.Check(ctx); err == nil {
		t.Fatal("Check passes with Redis frozen")
	}
	// Down, it answers at once without asking Redis.
	if _, _, err := c.Link(ctx, layer); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second Link: %v", err)
	}
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.Check(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("cache not back after Redis returned: %v", c.Check(ctx))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok, err := c.Link(ctx, layer); err != nil || ok {
		t.Fatalf("Link after the outage = %v, %v; want a miss", ok, err)
	}
}

// TestSentinel finds the master through a sentinel (mastername).
func TestSentinel(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	sentinel := testenv.StartRedisSentinel(t, srv, "berthmaster")
	c := newCache(t, &redis.UniversalOptions{Addrs: []string{sentinel}, MasterName: "berthmaster"})
	gen, err := c.Begin(ctx, layer.Repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PutLink(ctx, gen, layer, layer.Digest); err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer direct.Close()
	if n, err := direct.Exists(ctx, "repository::fleet/app::blobs::"+layer.Digest.String()).Result(); err != nil || n != 1 {
		t.Fatalf("the entry is not on the master the sentinel named: %d, %v", n, err)
	}
}

// TestDeleteReachesEveryRegistryAtOnce runs two content models on one store
// with the shared cache: what one deletes, the other answers unknown with
// no wait at all, and a push over a layer deleted on the other is refused.
func TestDeleteReachesEveryRegistryAtOnce(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	store := inmemory.New()
	opts := func() storage.Options {
		return storage.Options{DeleteEnabled: true, Shared: newCache(t, &redis.UniversalOptions{Addrs: []string{srv.Addr}})}
	}
	a, b := storage.New(store, opts(), nil), storage.New(store, opts(), nil)
	ra, rb := a.Repository("fleet/app"), b.Repository("fleet/app")

	cfg, l1 := []byte(`{"os":"linux"}`), []byte("layer one")
	for _, blob := range [][]byte{cfg, l1} {
		push(t, ra, blob)
	}
	manifest := imageManifest(t, cfg, l1)
	m, err := ra.PutManifest(ctx, "1.0", "application/vnd.oci.image.manifest.v1+json", manifest)
	if err != nil {
		t.Fatal(err)
	}
	// Both serve it, and so cache it.
	for _, r := range []storage.Repository{ra, rb} {
		if _, err := r.GetManifest(ctx, m.Digest.String()); err != nil {
			t.Fatal(err)
		}
		if _, err := r.StatBlob(ctx, digest.FromBytes(l1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rb.DeleteManifest(ctx, m.Digest); err != nil {
		t.Fatal(err)
	}
	if err := rb.DeleteBlob(ctx, digest.FromBytes(l1)); err != nil {
		t.Fatal(err)
	}
	if _, err := ra.GetManifest(ctx, m.Digest.String()); !errors.Is(err, storage.ErrManifestUnknown) {
		t.Errorf("A serves the manifest B deleted: %v", err)
	}
	if _, err := ra.StatBlob(ctx, digest.FromBytes(l1)); !errors.Is(err, storage.ErrBlobUnknown) {
		t.Errorf("A serves the layer B deleted: %v", err)
	}
	if _, err := ra.PutManifest(ctx, "1.0", "application/vnd.oci.image.manifest.v1+json", manifest); !errors.Is(err, storage.ErrManifestBlobUnknown) {
		t.Errorf("a push over the deleted layer: %v, want ErrManifestBlobUnknown", err)
	}
}

func push(t *testing.T, r storage.Repository, blob []byte) {
	t.Helper()
	ctx := context.Background()
	u, err := r.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(blob); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, digest.FromBytes(blob)); err != nil {
		t.Fatal(err)
	}
}

func imageManifest(t *testing.T, cfg []byte, layers ...[]byte) []byte {
	t.Helper()
	type desc struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int           `json:"size"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{2, "application/vnd.oci.image.manifest.v1+json",
		desc{"application/vnd.oci.image.config.v1+json", digest.FromBytes(cfg), len(cfg)}, nil}
	for _, l := range layers {
		m.Layers = append(m.Layers, desc{"application/vnd.oci.image.layer.v1.tar", digest.FromBytes(l), len(l)})
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCluster spreads the keys of one lookup (an entry, the global and the
// repository generation) over a three-master cluster: a pipeline across
// slots still answers, and an invalidation through another client is seen.
func TestCluster(t *testing.T) {
	ctx := context.Background()
	addrs := testenv.StartRedisCluster(t)
	a := newCache(t, &redis.UniversalOptions{Addrs: addrs})
	b := newCache(t, &redis.UniversalOptions{Addrs: addrs[1:]})
	for i := range 20 {
		k := storage.SharedLinkKey{Repo: fmt.Sprintf("team%d/app", i), Digest: digest.FromString(fmt.Sprint(i))}
		gen, err := a.Begin(ctx, k.Repo)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.PutLink(ctx, gen, k, k.Digest); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := b.Link(ctx, k); err != nil || !ok {
			t.Fatalf("%s: B.Link = %v, %v", k.Repo, ok, err)
		}
		if err := b.Invalidate(ctx, k.Repo, k); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := a.Link(ctx, k); err != nil || ok {
			t.Fatalf("%s: A.Link after B invalidated = %v, %v", k.Repo, ok, err)
		}
	}
}

// TestRedisGoingAwayNeverGivesWrongAnswers freezes Redis under two content
// models that both cached a manifest: B deletes it (and cannot tell Redis),
// A answers unknown once StaleBound has passed, and after Redis returns
// neither answers the entry written before the outage.
func TestRedisGoingAwayNeverGivesWrongAnswers(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	store := inmemory.New()
	var caches []*Cache
	newReg := func() storage.Repository {
		c := newCache(t, &redis.UniversalOptions{Addrs: []string{srv.Addr},
			ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
		caches = append(caches, c)
		return storage.New(store, storage.Options{DeleteEnabled: true, Shared: c}, nil).Repository("fleet/app")
	}
	ra, rb := newReg(), newReg()
	cfg := []byte(`{"os":"linux"}`)
	push(t, ra, cfg)
	m, err := ra.PutManifest(ctx, "1.0", "application/vnd.oci.image.manifest.v1+json", imageManifest(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []storage.Repository{ra, rb} {
		if _, err := r.GetManifest(ctx, m.Digest.String()); err != nil {
			t.Fatal(err)
		}
	}

	proc := srv.Process.Cmd.Process
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer proc.Signal(syscall.SIGCONT)
	if err := rb.DeleteManifest(ctx, m.Digest); err != nil {
		t.Fatalf("delete with Redis frozen: %v", err)
	}
	time.Sleep(storage.StaleBound)
	if _, err := ra.GetManifest(ctx, m.Digest.String()); !errors.Is(err, storage.ErrManifestUnknown) {
		t.Fatalf("A with Redis frozen, StaleBound after B deleted: %v, want ErrManifestUnknown", err)
	}

	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range caches {
		for c.Check(ctx) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("cache not back: %v", c.Check(ctx))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for name, r := range map[string]storage.Repository{"A": ra, "B": rb} {
		if _, err := r.GetManifest(ctx, m.Digest.String()); !errors.Is(err, storage.ErrManifestUnknown) {
			t.Errorf("%s after Redis returned: %v, want ErrManifestUnknown", name, err)
		}
	}
}

// TestARequestThatGaveUpDoesNotTakeRedisDown: a lookup whose client went
// away fails, but the cache stays up (going down forgets every entry on
// every instance); an invalidation that could not be sent does take it
// down, since a delete may then be unrecorded.
func TestARequestThatGaveUpDoesNotTakeRedisDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := newCache(t, &redis.UniversalOptions{Addrs: []string{srv.Addr}})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := c.Link(gone, layer); err == nil {
		t.Fatal("Link with a cancelled context succeeded")
	}
	if err := c.Check(context.Background()); err != nil {
		t.Fatalf("a cancelled lookup took the cache down: %v", err)
	}
	if err := c.Invalidate(gone, layer.Repo, layer); err == nil {
		t.Fatal("Invalidate with a cancelled context succeeded")
	}
	if err := c.Check(context.Background()); err == nil {
		t.Fatal("an invalidation that was not sent left the cache up")
	}
}
