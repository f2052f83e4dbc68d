package mirror

import (
	"context"
	"errors"
	"strings"

	"github.com/berth-registry/berth/storage"
)

// GetManifest answers a manifest by digest from storage, fetching it once
// when storage has none; by tag, from storage while the tag is fresh, then
// after asking the upstream (HEAD) whether the tag still points there,
// fetching it when it moved. An upstream that cannot be asked leaves the
// stored copy to answer, with a warning.
func (r *repository) GetManifest(ctx context.Context, ref string) (storage.Manifest, error) {
	if err := r.m.flights.settle(ctx, flightKey(r.Name(), ref)); err != nil {
		return storage.Manifest{}, err
	}
	if strings.Contains(ref, ":") {
		return r.byDigest(ctx, ref)
	}
	return r.byTag(ctx, ref)
}

// StatManifest describes what GetManifest would answer.
func (r *repository) StatManifest(ctx context.Context, ref string) (storage.Descriptor, error) {
	m, err := r.GetManifest(ctx, ref)
	return m.Descriptor, err
}

func (r *repository) byDigest(ctx context.Context, ref string) (storage.Manifest, error) {
	m, err := r.Repository.GetManifest(ctx, ref)
	if err == nil {
		r.src.stats.hits.Add(1)
		return m, nil
	}
	if !errors.Is(err, storage.ErrManifestUnknown) {
		return m, err
	}
	return r.fetchManifest(ctx, ref)
}

func (r *repository) byTag(ctx context.Context, tag string) (storage.Manifest, error) {
	key := r.Name() + ":" + tag
	local, lerr := r.Repository.GetManifest(ctx, tag)
	if lerr != nil && !errors.Is(lerr, storage.ErrManifestUnknown) {
		return local, lerr
	}
	have := lerr == nil
	if have && r.m.fresh.fresh(key, r.src.Freshness) {
		r.src.stats.hits.Add(1)
		return local, nil
	}
	if have {
		head, err := r.src.up.manifest(ctx, r.remote, tag, false)
		switch {
		case err == nil && head.digest == local.Digest:
			r.m.fresh.mark(key)
			r.src.stats.hits.Add(1)
			return local, nil
		case err != nil && upstreamDown(err):
			r.src.stats.errors.Add(1)
			r.stale(ctx, err)
			return local, nil
		case err != nil:
			// The upstream no longer has the tag: so the mirror does not.
			r.m.fresh.forget(key)
			return storage.Manifest{}, err
		}
	}
	return r.fetchManifest(ctx, tag)
}

// fetchManifest gets ref from the upstream, once for all concurrent
// callers, stores it (under the tag when ref is one) and records when it
// expires. The callers are answered as soon as the payload is fetched and
// checked as storage checks it; the store, which syncs what it writes,
// goes on behind them, and a caller that comes before it is done joins
// the same fetch. The fetch outlives a caller that hangs up.
func (r *repository) fetchManifest(ctx context.Context, ref string) (storage.Manifest, error) {
	r.src.stats.misses.Add(1)
	m, err := r.m.flights.do(ctx, flightKey(r.Name(), ref), func(answer func(storage.Manifest)) (storage.Manifest, error) {
		fctx := context.WithoutCancel(ctx)
		rm, err := r.src.up.manifest(fctx, r.remote, ref, true)
		if err != nil {
			return storage.Manifest{}, err
		}
		r.src.stats.bytes.Add(int64(len(rm.payload)))
		fetched, err := storage.CheckManifest(ref, rm.mediaType, rm.payload)
		if err != nil {
			return storage.Manifest{}, err
		}
		answer(fetched)
		wctx, cancel := context.WithTimeout(fctx, r.src.WriteTimeout)
		defer cancel()
		m, err := r.filler().PutManifest(wctx, ref, rm.mediaType, rm.payload)
		if err != nil {
			// Storage failed, not the upstream (the payload passed the
			// same checks): the client was served what was fetched, and
			// the next pull fetches it again.
			r.m.log.Error("mirror manifest not stored", "repo", r.Name(), "ref", ref, "err", err)
			return fetched, nil
		}
		if !strings.Contains(ref, ":") {
			r.m.fresh.mark(r.Name() + ":" + ref)
		}
		// A lost expiry only keeps the copy longer.
		ectx, cancel := context.WithTimeout(fctx, r.src.WriteTimeout)
		defer cancel()
		r.m.expire(ectx, r.src, r.Name(), m.Digest, true)
		if r.m.fill != nil {
			tag := ""
			if !strings.Contains(ref, ":") {
				tag = ref
			}
			r.m.fill(fctx, Filled{Upstream: r.src.RemoteURL, Repository: r.Name(), Descriptor: m.Descriptor, Tag: tag, Manifest: true})
		}
		r.m.log.Info("manifest fetched", "repo", r.Name(), "upstream", r.src.RemoteURL, "ref", ref, "digest", m.Digest)
		return m, nil
	})
	if err != nil && upstreamDown(err) {
		r.src.stats.errors.Add(1)
	}
	return m, err
}

// flightKey names the fetch of manifest ref of repository name.
func flightKey(name, ref string) string { return name + "@" + ref }
