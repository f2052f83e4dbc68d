package storage

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types Berth stores. Like Distribution, it derives a stored
// manifest's type from its payload when serving it (the mediaType field,
// else its shape), and it accepts a push only when that derivation gives
// back the type the client pushed — so no media type needs storing, and a
// tree written by either program reads the same in the other.
const (
	mediaTypeOCIManifest    = ocispec.MediaTypeImageManifest
	mediaTypeOCIIndex       = ocispec.MediaTypeImageIndex
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeSchema1        = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeSchema1Signed  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	mediaTypeDockerForeign  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	nondistributablePrefix  = "application/vnd.oci.image.layer.nondistributable."
)

// maxManifestSize is the largest manifest accepted (Distribution's limit).
// Stored manifests are read with a looser limit, for trees written by
// other tools.
const (
	maxManifestSize     = 4 << 20
	maxStoredManifest   = 4 * maxManifestSize
	schema1Unsupported  = "Docker schema 1 manifests are not supported; convert the image to Docker schema 2 or OCI (for example: skopeo copy --format v2s2, or crane copy) and push it again"
	unspecifiedJSONType = "application/json"
)

// manifestDoc is the union of the fields of the four manifest formats.
type manifestDoc struct {
	SchemaVersion *int                 `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
	Signatures    json.RawMessage      `json:"signatures"` // schema 1 only
}

// manifestInfo is what is known of a stored manifest; the cache keeps it
// by digest.
type manifestInfo struct {
	payload      []byte
	mediaType    string
	subject      digest.Digest
	artifactType string // as the referrers API reports it
	annotations  map[string]string
}

func isIndexType(mt string) bool { return mt == mediaTypeOCIIndex || mt == mediaTypeDockerList }

// describe reads a stored payload. It is lenient: whatever was stored is
// served, including schema 1 manifests an older registry wrote.
func describe(payload []byte) (*manifestInfo, error) {
	var doc manifestDoc
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("storage: stored manifest is not JSON: %w", err)
	}
	mt := doc.MediaType
	switch {
	case mt != "":
	case doc.SchemaVersion != nil && *doc.SchemaVersion == 1 && len(doc.Signatures) > 0:
		mt = mediaTypeSchema1Signed
	case doc.SchemaVersion != nil && *doc.SchemaVersion == 1:
		mt = mediaTypeSchema1
	case doc.Manifests != nil:
		mt = mediaTypeOCIIndex
	default:
		mt = mediaTypeOCIManifest
	}
	return infoOf(payload, mt, &doc), nil
}

func infoOf(payload []byte, mt string, doc *manifestDoc) *manifestInfo {
	info := &manifestInfo{payload: payload, mediaType: mt, artifactType: doc.ArtifactType, annotations: doc.Annotations}
	if doc.Subject != nil {
		info.subject = doc.Subject.Digest
	}
	// The referrers API reports an image manifest without artifactType by
	// its config's media type; an index has none to fall back on.
	if info.artifactType == "" && !isIndexType(mt) && doc.Config != nil {
		info.artifactType = doc.Config.MediaType
	}
	return info
}

func invalidManifest(format string, args ...any) error {
	return &Error{Err: ErrManifestInvalid, Detail: fmt.Sprintf(format, args...)}
}

// parseManifest checks a pushed payload against the Content-Type it came
// with and returns it parsed with its media type.
func parseManifest(contentType string, payload []byte) (*manifestDoc, string, error) {
	if len(payload) > maxManifestSize {
		return nil, "", invalidManifest("manifest is larger than %d bytes", maxManifestSize)
	}
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	if ct == unspecifiedJSONType {
		ct = ""
	}
	if ct == mediaTypeSchema1 || ct == mediaTypeSchema1Signed {
		return nil, "", invalidManifest(schema1Unsupported)
	}
	var doc manifestDoc
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, "", invalidManifest("manifest is not valid JSON")
	}
	switch {
	case doc.SchemaVersion == nil:
		return nil, "", invalidManifest("schemaVersion is missing")
	case *doc.SchemaVersion == 1:
		return nil, "", invalidManifest(schema1Unsupported)
	case *doc.SchemaVersion != 2:
		return nil, "", invalidManifest("unsupported schemaVersion %d", *doc.SchemaVersion)
	}
	if doc.MediaType != "" && ct != "" && doc.MediaType != ct {
		return nil, "", invalidManifest("mediaType %q does not match Content-Type %q", doc.MediaType, ct)
	}
	mt := doc.MediaType
	if mt == "" {
		mt = ct
	}
	if mt == "" {
		mt = mediaTypeOCIManifest
		if doc.Manifests != nil {
			mt = mediaTypeOCIIndex
		}
	}
	if (mt == mediaTypeDockerManifest || mt == mediaTypeDockerList) && doc.MediaType == "" {
		// Docker's formats always carry their type; without it the
		// payload would be served back as OCI.
		return nil, "", invalidManifest("mediaType is missing")
	}
	switch mt {
	case mediaTypeOCIManifest, mediaTypeDockerManifest:
		if doc.Config == nil {
			return nil, "", invalidManifest("config is missing")
		}
		if doc.Manifests != nil {
			return nil, "", invalidManifest("an image manifest has no manifests field")
		}
	case mediaTypeOCIIndex, mediaTypeDockerList:
		if doc.Manifests == nil {
			return nil, "", invalidManifest("manifests is missing")
		}
		if doc.Config != nil || doc.Layers != nil {
			return nil, "", invalidManifest("an index has no config or layers")
		}
	default:
		return nil, "", invalidManifest("unsupported manifest media type %q", mt)
	}
	for _, d := range doc.references() {
		if err := validDigest(d.Digest); err != nil {
			return nil, "", &Error{Err: ErrManifestInvalid, Detail: "invalid digest " + string(d.Digest), Digest: d.Digest}
		}
	}
	return &doc, mt, nil
}

// references lists every descriptor in the manifest, subject included.
func (doc *manifestDoc) references() []ocispec.Descriptor {
	var refs []ocispec.Descriptor
	if doc.Config != nil {
		refs = append(refs, *doc.Config)
	}
	refs = append(refs, doc.Layers...)
	refs = append(refs, doc.Manifests...)
	if doc.Subject != nil {
		refs = append(refs, *doc.Subject)
	}
	return refs
}

func isNondistributable(mt string) bool {
	return strings.HasPrefix(mt, nondistributablePrefix) || mt == mediaTypeDockerForeign
}
