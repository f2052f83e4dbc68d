package storage

import (
	"context"
	"errors"
	"net/url"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// verifyReferences checks, as validation.manifests asks, that what a
// manifest references is in this repository: an image manifest's config and
// layers as linked blobs, an index's children as manifests. The subject is
// never checked: the spec has referrers pushed before their subject. It
// returns the digests it found, which the manifest's write then confirms
// (gcfence.go).
func (r *repository) verifyReferences(ctx context.Context, doc *manifestDoc, mediaType string) ([]digest.Digest, error) {
	v := r.reg.opts.Validation
	if v.Disabled {
		return nil, nil
	}
	var found []digest.Digest
	if isIndexType(mediaType) {
		for _, m := range doc.Manifests {
			if !r.mustExist(m) {
				continue
			}
			if err := r.manifestExists(ctx, m.Digest); err != nil {
				return nil, err
			}
			found = append(found, m.Digest)
		}
		return found, nil
	}
	target, err := r.blobLinked(ctx, doc.Config.Digest)
	if err != nil {
		return nil, err
	}
	found = append(found, target)
	for _, l := range doc.Layers {
		if isNondistributable(l.MediaType) {
			// Never pushed to a registry by definition; only the URLs
			// it points at are policed.
			if r.reg.urlDenied(l.URLs) {
				return nil, &Error{Err: ErrManifestBlobUnknown, Digest: l.Digest, Detail: "layer URL refused by policy"}
			}
			continue
		}
		if len(l.URLs) > 0 && r.reg.urlsAllowed(l.URLs) {
			continue
		}
		target, err := r.blobLinked(ctx, l.Digest)
		if err != nil {
			return nil, err
		}
		found = append(found, target)
	}
	return found, nil
}

// mustExist applies validation.manifests.indexes.platforms to one child.
func (r *repository) mustExist(m ocispec.Descriptor) bool {
	v := r.reg.opts.Validation
	switch v.IndexPlatforms {
	case "none":
		return false
	case "list":
		if m.Platform == nil {
			return false
		}
		for _, p := range v.IndexPlatformList {
			if p.OS == m.Platform.OS && p.Architecture == m.Platform.Architecture {
				return true
			}
		}
		return false
	default: // "all" or unset
		return true
	}
}

// blobLinked returns the content the repository's link for d points at,
// read from storage: a manifest is acknowledged only over links that are
// there now, whatever another instance deleted.
func (r *repository) blobLinked(ctx context.Context, d digest.Digest) (digest.Digest, error) {
	target, _, err := r.statLink(ctx, d, fresh)
	if err != nil {
		if errors.Is(err, ErrBlobUnknown) {
			return "", &Error{Err: ErrManifestBlobUnknown, Digest: d, Detail: "blob " + string(d) + " is not in the repository"}
		}
		return "", err
	}
	return target, nil
}

func (r *repository) manifestExists(ctx context.Context, d digest.Digest) error {
	if _, err := r.loadManifestAs(ctx, d, fresh); err != nil {
		if errors.Is(err, ErrManifestUnknown) {
			return &Error{Err: ErrManifestBlobUnknown, Digest: d, Detail: "manifest " + string(d) + " is not in the repository"}
		}
		return err
	}
	return nil
}

// urlsAllowed tells whether a layer may be stored without its blob because
// it can be fetched from urls: every URL is http(s) without a fragment,
// matches an allow pattern and no deny pattern. With no allow pattern
// nothing is allowed, as in Distribution.
func (r *Registry) urlsAllowed(urls []string) bool {
	if r.urlsBroken || len(r.urlsAllow) == 0 {
		return false
	}
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Fragment != "" {
			return false
		}
		allowed := false
		for _, re := range r.urlsAllow {
			if re.MatchString(u) {
				allowed = true
				break
			}
		}
		if !allowed || r.matchesDeny(u) {
			return false
		}
	}
	return true
}

// urlDenied tells whether any of urls matches a deny pattern.
func (r *Registry) urlDenied(urls []string) bool {
	if len(urls) > 0 && r.urlsBroken {
		return true
	}
	for _, u := range urls {
		if r.matchesDeny(u) {
			return true
		}
	}
	return false
}

func (r *Registry) matchesDeny(u string) bool {
	for _, re := range r.urlsDeny {
		if re.MatchString(u) {
			return true
		}
	}
	return false
}
