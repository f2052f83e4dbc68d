package mirror

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// The TTL of fetched content is kept in storage, beside the content and
// through the same driver, so it survives restarts, is shared by every
// instance on the backend, and works on every driver. Distribution skips
// this tree: it is outside blobs/ and repositories/.
//
//	/docker/registry/v2/_berth/mirror/expiry/<repo>/_blobs/<alg>/<hex>
//	/docker/registry/v2/_berth/mirror/expiry/<repo>/_manifests/<alg>/<hex>
//
// Each file holds the Unix time (seconds) its content expires.
const expiryRoot = "/docker/registry/v2/_berth/mirror/expiry"

func expiryPath(repo string, d digest.Digest, manifest bool) string {
	kind := "/_blobs/"
	if manifest {
		kind = "/_manifests/"
	}
	return expiryRoot + "/" + repo + kind + string(d.Algorithm()) + "/" + d.Encoded()
}

// parseExpiryPath reads back what expiryPath wrote.
func parseExpiryPath(p string) (repo string, d digest.Digest, manifest bool, ok bool) {
	rest, ok := strings.CutPrefix(p, expiryRoot+"/")
	if !ok {
		return "", "", false, false
	}
	for _, kind := range []string{"/_blobs/", "/_manifests/"} {
		i := strings.Index(rest, kind)
		if i <= 0 {
			continue
		}
		alg, hex, ok := strings.Cut(rest[i+len(kind):], "/")
		if !ok {
			return "", "", false, false
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
		if d.Validate() != nil {
			return "", "", false, false
		}
		return rest[:i], d, kind == "/_manifests/", true
	}
	return "", "", false, false
}

// expire records when content just fetched into repo expires. A failure
// is logged: the content then stays until fetched again.
func (m *Mirror) expire(ctx context.Context, src *source, repo string, d digest.Digest, manifest bool) {
	if src.TTL <= 0 {
		return
	}
	at := time.Now().Add(src.TTL).Unix()
	if err := driver.PutContent(ctx, m.reg.Driver(), expiryPath(repo, d, manifest), []byte(strconv.FormatInt(at, 10))); err != nil {
		m.log.Error("mirror expiry not recorded", "repo", repo, "digest", d, "err", err)
	}
}

// Evict removes what expired by now: the manifests (with the tags that
// point at them) and blob links of each repository, and, when every
// repository is a mirror, the blob data too. It returns how many entries
// it evicted. Safe to run on several instances at once.
func (m *Mirror) Evict(ctx context.Context, now time.Time) (int, error) {
	drv := m.reg.Driver()
	var due []string
	err := driver.Walk(ctx, drv, expiryRoot, func(fi driver.FileInfo) error {
		if fi.IsDir {
			return nil
		}
		b, err := driver.GetContent(ctx, drv, fi.Path, 64)
		if err != nil {
			if errors.Is(err, driver.ErrNotFound) {
				return nil
			}
			return err
		}
		at, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil || !now.Before(time.Unix(at, 0)) {
			due = append(due, fi.Path)
		}
		return nil
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return 0, err
	}
	n := 0
	for _, p := range due {
		if err := m.evict(ctx, p, now); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// evict removes the content of one expiry entry, then the entry, unless
// the content was fetched again since the entry was read (a new expiry).
// A fetch racing the eviction can still find its blob data deleted after
// it linked it; the link then reads as missing and the next pull fetches
// again.
func (m *Mirror) evict(ctx context.Context, p string, now time.Time) error {
	drv := m.reg.Driver()
	if b, err := driver.GetContent(ctx, drv, p, 64); err == nil {
		if at, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); perr == nil && now.Before(time.Unix(at, 0)) {
			return nil
		}
	}
	repo, d, manifest, ok := parseExpiryPath(p)
	if ok {
		r := m.reg.Mirrored(repo)
		var err error
		if manifest {
			err = r.DeleteManifest(ctx, d)
		} else {
			err = r.DeleteBlob(ctx, d)
		}
		if err != nil && !errors.Is(err, storage.ErrManifestUnknown) && !errors.Is(err, storage.ErrBlobUnknown) {
			return err
		}
		// Manifest payloads are small and stay for garbage collection.
		if m.all && !manifest {
			if err := m.reg.RemoveBlobData(ctx, d); err != nil {
				return err
			}
		}
		if src, _ := m.route(repo); src != nil {
			src.stats.evicted.Add(1)
		}
		m.log.Info("mirror content expired", "repo", repo, "digest", d, "manifest", manifest)
	}
	if err := drv.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return nil
}

// Run evicts expired content every interval until ctx ends. Errors are
// logged and retried at the next round.
func (m *Mirror) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := m.Evict(ctx, time.Now()); err != nil && ctx.Err() == nil {
			m.log.Error("mirror eviction", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// EvictInterval is how often Run should look for expired content: a
// tenth of the shortest TTL, between a second and ten minutes.
func (m *Mirror) EvictInterval() time.Duration {
	iv := 10 * time.Minute
	for _, s := range m.upstreams {
		if s.TTL > 0 && s.TTL/10 < iv {
			iv = s.TTL / 10
		}
	}
	return max(iv, time.Second)
}

// Evicting reports whether any upstream has a TTL, so Run has work.
func (m *Mirror) Evicting() bool {
	for _, s := range m.upstreams {
		if s.TTL > 0 {
			return true
		}
	}
	return false
}
