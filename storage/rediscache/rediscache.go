// Package rediscache is the cache every Berth instance on one store
// shares, in Redis: which repositories link which content, and blob
// descriptors (storage.SharedCache). It writes CNCF Distribution's blob
// descriptor keys, so a Distribution sharing the Redis finds them, and adds
// generations that make a delete reach every instance before it is
// answered. It knows Redis and digests, not paths or HTTP.
package rediscache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"
)

// Keys. blobs::<digest>, repository::<name>::blobs and
// repository::<name>::blobs::<digest> are Distribution's; the berth* fields
// in them and the berth:: keys are Berth's.
const (
	globalGenKey  = "berth::generation"
	repoGenPrefix = "berth::generation::"

	blobMediaType = "application/octet-stream"
)

func blobKey(d digest.Digest) string { return "blobs::" + d.String() }

func repoBlobsKey(repo string) string { return "repository::" + repo + "::blobs" }

func linkKey(k storage.SharedLinkKey) string {
	if k.Manifest {
		return "berth::repository::" + k.Repo + "::manifests::" + k.Digest.String()
	}
	return repoBlobsKey(k.Repo) + "::" + k.Digest.String()
}

// EntryTTL is how long an entry lives in Redis. Generations make a delete
// reach every instance at once; the expiry bounds what an instance that
// could not reach Redis when it deleted leaves behind.
const EntryTTL = time.Minute

// retryEvery is how often an unavailable cache tries Redis again.
const retryEvery = time.Second

// ErrUnavailable is what every call returns while the cache cannot vouch
// for its generations: Redis failed, and a delete may have gone
// unrecorded meanwhile.
var ErrUnavailable = errors.New("rediscache: redis unavailable")

// Cache is a storage.SharedCache over a go-redis client (single server,
// sentinel or cluster).
type Cache struct {
	client redis.UniversalClient
	log    *slog.Logger

	up      atomic.Bool
	lastErr atomic.Pointer[error]
	mu      sync.Mutex // guards retrying
	retry   bool
	stop    chan struct{}
	done    sync.WaitGroup
}

var _ storage.SharedCache = (*Cache)(nil)

// New checks that Redis answers and returns the cache over client. A
// Redis that does not answer is an error: the operator asked for it.
func New(ctx context.Context, client redis.UniversalClient, log *slog.Logger) (*Cache, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := client.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("rediscache: ping: %w", err)
	}
	c := &Cache{client: client, log: log, stop: make(chan struct{})}
	c.up.Store(true)
	return c, nil
}

// Close stops the retries and closes the client.
func (c *Cache) Close() error {
	close(c.stop)
	c.done.Wait()
	return c.client.Close()
}

// Check reports whether the cache answers, for the health checks.
func (c *Cache) Check(context.Context) error {
	if c.up.Load() {
		return nil
	}
	if p := c.lastErr.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, *p)
	}
	return ErrUnavailable
}

// fail records a Redis failure: the cache stops answering, and tries
// Redis again every second. It is back once it has advanced the global
// generation, which forgets every entry put before: a delete made while
// it was down may not have been recorded.
func (c *Cache) fail(err error) error {
	c.lastErr.Store(&err)
	if c.up.CompareAndSwap(true, false) {
		c.log.Warn("shared cache unavailable; reading storage", "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.retry {
		c.retry = true
		c.done.Add(1)
		go c.recover()
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// failRead is fail for a lookup or a put: a request that gave up (its
// context ended) says nothing of Redis, and loses nothing a delete needs.
func (c *Cache) failRead(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	return c.fail(err)
}

func (c *Cache) recover() {
	defer c.done.Done()
	t := time.NewTicker(retryEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), retryEvery)
		err := c.client.Incr(ctx, globalGenKey).Err()
		cancel()
		if err != nil {
			c.lastErr.Store(&err)
			continue
		}
		c.mu.Lock()
		c.retry = false
		c.mu.Unlock()
		c.up.Store(true)
		c.log.Info("shared cache available again")
		return
	}
}

// ready fails fast while the cache is down.
func (c *Cache) ready() error {
	if c.up.Load() {
		return nil
	}
	return ErrUnavailable
}

// Begin implements storage.SharedCache. A repository's generation is the
// global one and its own, so a collection (global) and a delete in the
// repository both advance it.
func (c *Cache) Begin(ctx context.Context, repo string) (string, error) {
	if err := c.ready(); err != nil {
		return "", err
	}
	var g, r *redis.StringCmd
	_, err := c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		g = p.Get(ctx, globalGenKey)
		if repo != "" {
			r = p.Get(ctx, repoGenPrefix+repo)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", c.failRead(ctx, err)
	}
	return generation(g, r), nil
}

// generation joins the values of the generation keys; a missing key is 0.
func generation(cmds ...*redis.StringCmd) string {
	gen := ""
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		v, err := cmd.Result()
		if err != nil {
			v = "0"
		}
		if i > 0 {
			gen += "."
		}
		gen += v
	}
	return gen
}

// Link implements storage.SharedCache: the entry and the generations are
// read in one round trip.
func (c *Cache) Link(ctx context.Context, k storage.SharedLinkKey) (digest.Digest, bool, error) {
	if err := c.ready(); err != nil {
		return "", false, err
	}
	var fields *redis.SliceCmd
	var g, r *redis.StringCmd
	_, err := c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		fields = p.HMGet(ctx, linkKey(k), "berthtarget", "berthgen")
		g = p.Get(ctx, globalGenKey)
		r = p.Get(ctx, repoGenPrefix+k.Repo)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", false, c.failRead(ctx, err)
	}
	v := fields.Val()
	target, _ := v[0].(string)
	gen, _ := v[1].(string)
	if target == "" || gen != generation(g, r) {
		return "", false, nil
	}
	d, err := digest.Parse(target)
	if err != nil {
		return "", false, nil // not ours to trust
	}
	return d, true, nil
}

// PutLink implements storage.SharedCache. A layer link also goes into
// Distribution's set of the repository's blobs.
func (c *Cache) PutLink(ctx context.Context, gen string, k storage.SharedLinkKey, target digest.Digest) error {
	if err := c.ready(); err != nil {
		return err
	}
	key := linkKey(k)
	_, err := c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		if k.Manifest {
			p.HSet(ctx, key, "berthtarget", target.String(), "berthgen", gen)
		} else {
			p.HSet(ctx, key, "mediatype", blobMediaType, "berthtarget", target.String(), "berthgen", gen)
			p.SAdd(ctx, repoBlobsKey(k.Repo), k.Digest.String())
			p.Expire(ctx, repoBlobsKey(k.Repo), EntryTTL)
		}
		p.Expire(ctx, key, EntryTTL)
		return nil
	})
	if err != nil {
		return c.failRead(ctx, err)
	}
	return nil
}

// Blob implements storage.SharedCache.
func (c *Cache) Blob(ctx context.Context, d digest.Digest) (storage.SharedBlob, bool, error) {
	if err := c.ready(); err != nil {
		return storage.SharedBlob{}, false, err
	}
	var fields *redis.SliceCmd
	var g *redis.StringCmd
	_, err := c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		fields = p.HMGet(ctx, blobKey(d), "size", "berthgen", "berthmodtime")
		g = p.Get(ctx, globalGenKey)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return storage.SharedBlob{}, false, c.failRead(ctx, err)
	}
	v := fields.Val()
	size, _ := v[0].(string)
	gen, _ := v[1].(string)
	mod, _ := v[2].(string)
	if size == "" || gen != generation(g) {
		return storage.SharedBlob{}, false, nil
	}
	n, err1 := strconv.ParseInt(size, 10, 64)
	ns, err2 := strconv.ParseInt(mod, 10, 64)
	if err1 != nil || err2 != nil || n < 0 {
		return storage.SharedBlob{}, false, nil
	}
	return storage.SharedBlob{Size: n, ModTime: time.Unix(0, ns)}, true, nil
}

// PutBlob implements storage.SharedCache, in Distribution's descriptor
// hash.
func (c *Cache) PutBlob(ctx context.Context, gen string, d digest.Digest, b storage.SharedBlob) error {
	if err := c.ready(); err != nil {
		return err
	}
	key := blobKey(d)
	_, err := c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "digest", d.String(), "size", b.Size, "berthgen", gen, "berthmodtime", b.ModTime.UnixNano())
		p.HSetNX(ctx, key, "mediatype", blobMediaType)
		p.Expire(ctx, key, EntryTTL)
		return nil
	})
	if err != nil {
		return c.failRead(ctx, err)
	}
	return nil
}

// Invalidate implements storage.SharedCache. The generation is advanced
// even when Redis was marked down a moment ago: that is the one write a
// delete must not skip.
func (c *Cache) Invalidate(ctx context.Context, repo string, keys ...storage.SharedLinkKey) error {
	_, err := c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, linkKey(k))
			if !k.Manifest {
				p.SRem(ctx, repoBlobsKey(k.Repo), k.Digest.String())
			}
		}
		if repo == "" {
			p.Incr(ctx, globalGenKey)
		} else {
			p.Incr(ctx, repoGenPrefix+repo)
		}
		return nil
	})
	if err != nil {
		return c.fail(err)
	}
	return nil
}
