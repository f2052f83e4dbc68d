package registry

import (
	"errors"
	"net/http"

	"github.com/berth-registry/berth/storage"
)

const mediaTypeIndex = "application/vnd.oci.image.index.v1+json"

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// getReferrers lists the manifests whose subject is the digest, as an
// image index, filtered by ?artifactType=. A registry with the referrers
// API must not answer 404, so a subject or repository nobody has pushed
// to has an empty list.
func (a *api) getReferrers(w http.ResponseWriter, r *http.Request, req *request) error {
	d, err := parseDigest(req.ref)
	if err != nil {
		return err
	}
	artifactType := r.URL.Query().Get("artifactType")
	refs, err := req.repo.Referrers(r.Context(), d, artifactType)
	if err != nil && !errors.Is(err, storage.ErrNameUnknown) && !errors.Is(err, storage.ErrManifestUnknown) {
		return err
	}
	out := index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: make([]descriptor, 0, len(refs))}
	for _, ref := range refs {
		out.Manifests = append(out.Manifests, descriptor{
			MediaType:    ref.MediaType,
			Digest:       ref.Digest.String(),
			Size:         ref.Size,
			ArtifactType: ref.ArtifactType,
			Annotations:  ref.Annotations,
		})
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, mediaTypeIndex, out)
}
