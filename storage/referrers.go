package storage

import (
	"context"
	"encoding/json"
	"errors"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Referrers lists the manifests of this repository whose subject is d,
// filtered to artifactType when it is not "", sorted by digest.
//
// The answer joins two sources: Berth's _referrers index, written when a
// manifest with a subject is pushed, and the image index clients keep at
// the referrers tag (sha256-<hex>) for registries without the API — which
// the spec requires be included, and which is all a tree written by
// Distribution has.
func (r *repository) Referrers(ctx context.Context, d digest.Digest, artifactType string) ([]Referrer, error) {
	if err := validDigest(d); err != nil {
		return nil, err
	}
	found := map[digest.Digest]*manifestInfo{}
	add := func(rd digest.Digest) error {
		if _, dup := found[rd]; dup {
			return nil
		}
		info, err := r.loadManifest(ctx, rd)
		if err != nil {
			if errors.Is(err, ErrManifestUnknown) {
				return nil // deleted, or collected, since it was indexed
			}
			return err
		}
		if info.subject == d {
			found[rd] = info
		}
		return nil
	}

	indexed, err := r.indexedReferrers(ctx, d)
	if err != nil {
		return nil, err
	}
	for _, rd := range indexed {
		if err := add(rd); err != nil {
			return nil, err
		}
	}
	tagged, err := r.taggedReferrers(ctx, d)
	if err != nil {
		return nil, err
	}
	for _, rd := range tagged {
		if err := add(rd); err != nil {
			return nil, err
		}
	}

	out := []Referrer{}
	for rd, info := range found {
		if artifactType != "" && info.artifactType != artifactType {
			continue
		}
		out = append(out, Referrer{
			Descriptor:   Descriptor{MediaType: info.mediaType, Digest: rd, Size: int64(len(info.payload))},
			ArtifactType: info.artifactType,
			Annotations:  info.annotations,
		})
	}
	slices.SortFunc(out, func(a, b Referrer) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// indexedReferrers reads _referrers/<subject alg>/<subject hex>/<alg>/<hex>.
func (r *repository) indexedReferrers(ctx context.Context, subject digest.Digest) ([]digest.Digest, error) {
	algDirs, err := r.driver().List(ctx, referrersDir(r.name, subject))
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, wrapDriverErr("list referrers", err)
	}
	var out []digest.Digest
	for _, algDir := range algDirs {
		entries, err := r.driver().List(ctx, algDir)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, wrapDriverErr("list referrers", err)
		}
		for _, e := range entries {
			rd := digest.NewDigestFromEncoded(digest.Algorithm(path.Base(algDir)), path.Base(e))
			if validDigest(rd) == nil {
				out = append(out, rd)
			}
		}
	}
	return out, nil
}

// referrersTag is the spec's referrers tag schema for d: the algorithm
// truncated to 32 characters, "-", the encoded part truncated to 64.
func referrersTag(d digest.Digest) string {
	alg, enc := string(d.Algorithm()), d.Encoded()
	if len(alg) > 32 {
		alg = alg[:32]
	}
	if len(enc) > 64 {
		enc = enc[:64]
	}
	return alg + "-" + enc
}

// taggedReferrers lists the children of the index at the referrers tag.
func (r *repository) taggedReferrers(ctx context.Context, subject digest.Digest) ([]digest.Digest, error) {
	id, err := r.resolve(ctx, referrersTag(subject))
	if err != nil {
		if errors.Is(err, ErrManifestUnknown) {
			return nil, nil
		}
		return nil, err
	}
	info, err := r.loadManifest(ctx, id)
	if err != nil {
		if errors.Is(err, ErrManifestUnknown) {
			return nil, nil
		}
		return nil, err
	}
	if !isIndexType(info.mediaType) {
		return nil, nil
	}
	var doc manifestDoc
	if err := json.Unmarshal(info.payload, &doc); err != nil {
		return nil, nil
	}
	var out []digest.Digest
	for _, m := range doc.Manifests {
		if validDigest(m.Digest) == nil {
			out = append(out, m.Digest)
		}
	}
	return out, nil
}
