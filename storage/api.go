// Package storage is Berth's content model over a storage driver: blobs,
// uploads, manifests, tags, referrers and the repository catalog, kept in
// CNCF Distribution's on-storage layout so either program serves what the
// other wrote. It knows nothing of HTTP; the registry package maps its
// errors to API errors.
package storage

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/opencontainers/go-digest"
)

// Descriptor describes stored content.
type Descriptor struct {
	MediaType string
	Digest    digest.Digest
	Size      int64
}

// Errors the content model returns. Check them with errors.Is; richer
// detail travels in *Error.
var (
	ErrBlobUnknown         = errors.New("blob unknown to registry")
	ErrManifestUnknown     = errors.New("manifest unknown")
	ErrManifestInvalid     = errors.New("manifest invalid")
	ErrManifestBlobUnknown = errors.New("manifest references a blob or manifest unknown to the repository")
	ErrUploadUnknown       = errors.New("blob upload unknown to registry")
	ErrUploadInvalid       = errors.New("blob upload invalid")
	ErrDigestInvalid       = errors.New("provided digest did not match uploaded content")
	ErrSizeInvalid         = errors.New("provided length did not match content length")
	ErrRangeInvalid        = errors.New("requested range not satisfiable")
	ErrNameUnknown         = errors.New("repository name not known to registry")
	ErrDeleteDisabled      = errors.New("deletes are disabled")
	ErrUnsupportedDigest   = errors.New("unsupported digest algorithm")
	// ErrUnsupported is an operation this repository does not allow: a
	// push or delete in a pull-through mirror.
	ErrUnsupported = errors.New("the operation is unsupported")
	// ErrUpstreamUnavailable is a mirror's upstream registry that could
	// not be reached, timed out or answered with a server error, for
	// content the mirror has no copy of.
	ErrUpstreamUnavailable = errors.New("upstream registry unavailable")
	// ErrUpstreamTimeout is an upstream that did not answer in time.
	ErrUpstreamTimeout = errors.New("upstream registry timed out")
)

// Error adds detail to one of the sentinel errors above: which digest or
// field was at fault. errors.Is(err, ErrManifestBlobUnknown) still holds.
type Error struct {
	Err    error  // one of the sentinels
	Detail string // human-readable, safe to show a client
	Digest digest.Digest
}

func (e *Error) Error() string {
	s := e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Blob is an open committed blob. Serve it with File when that is non-nil
// (sendfile), else with the ReadSeeker, whose reads go to the driver lazily
// from the last Seek.
type Blob interface {
	io.ReadSeekCloser
	Descriptor() Descriptor
	ModTime() time.Time
	// File returns the blob's *os.File when the driver can hand one out.
	File() *os.File
	// Open reaches the backend for a read from offset now, so that a
	// failure comes before a response starts; the next Read from offset
	// goes on from there.
	Open(offset int64) error
}

// Upload is one blob upload session. Write streams bytes through the
// running digest straight into the driver. Close ends this request's part
// of the upload and persists the digest state, so a later Resume (on any
// instance) can continue; Commit and Cancel end the upload.
type Upload interface {
	io.Writer
	io.ReaderFrom
	ID() string
	Size() int64
	StartedAt() time.Time
	// Close persists what this request wrote for a later Resume.
	Close(ctx context.Context) error
	// Commit verifies the content against want (ErrDigestInvalid, storing
	// nothing, on mismatch), publishes the blob and links it into the
	// repository. The upload is gone afterwards.
	Commit(ctx context.Context, want digest.Digest) (Descriptor, error)
	// Cancel discards the upload and everything written to it.
	Cancel(ctx context.Context) error
}

// AlgorithmSetter is implemented by the Uploads of this package. Calling
// SetAlgorithm (sha256 or sha512) before the first byte makes the upload
// hash with that algorithm, so that Commit with a digest of that algorithm
// needs no second pass over the data. Without it an upload hashes with
// sha256, and Commit with a sha512 digest reads the data back once.
type AlgorithmSetter interface {
	SetAlgorithm(alg digest.Algorithm) error
}

// Expecter is implemented by the Uploads of this package. Expect(n) tells
// the upload that n bytes come before its next Close or Commit, as a
// request's Content-Length says: an object store sends them as several
// parts at once rather than one part after another (see
// driver.Expecter). A body of another length is still stored exactly.
type Expecter interface {
	Expect(n int64)
}

// Manifest is a stored manifest with its raw payload, byte for byte as pushed.
type Manifest struct {
	Descriptor
	Payload []byte
	// Subject is the digest of the manifest's subject, if it has one.
	Subject digest.Digest
}

// Referrer is a manifest whose subject is another manifest.
type Referrer struct {
	Descriptor
	ArtifactType string
	Annotations  map[string]string
}

// Options tune the content model.
type Options struct {
	// DeleteEnabled allows deleting blobs, manifests and tags
	// (storage.delete.enabled); otherwise those return ErrDeleteDisabled.
	DeleteEnabled bool
	// Validation is the validation.manifests section.
	Validation ManifestValidation
	// TagConcurrencyLimit bounds the tag links read at once when a
	// manifest delete looks for the tags that point at it
	// (storage.tag.concurrencylimit); 0 means GOMAXPROCS, as in
	// Distribution.
	TagConcurrencyLimit int
	// Shared is the cache every instance on the store shares (redis, with
	// storage.cache.blobdescriptor: redis); nil for none.
	Shared SharedCache
	// BlobDescriptors is how many blob descriptors this instance keeps in
	// memory (storage.cache.blobdescriptorsize); 0 for the default.
	BlobDescriptors int
	// ContentBytes bounds the bytes of manifests and small blobs this
	// instance keeps in memory (berth.storage.cache.contentbytes); 0 for
	// contentCacheMax.
	ContentBytes int64
	// UploadLease is how long a request holds its upload session between
	// renewals (berth.storage.uploadlease); 0 for uploadLeaseTerm.
	UploadLease time.Duration
	// LeaseSkew is how long past its expiry a lease's claim is honoured by
	// other instances (berth.storage.leaseskew); 0 for leaseSkew.
	LeaseSkew time.Duration
	// DistributionUploads leaves every upload session, at the end of each
	// request, in the form CNCF Distribution's driver continues as well
	// (berth.storage.distributionuploads), for a fleet where Berth and
	// Distribution serve one store (see driver.SharedCloser).
	DistributionUploads bool
	// NoCatalogIndex turns the catalog index off (catalogindex.go):
	// berth.storage.catalogindex: false. It is off too with
	// DistributionUploads, and on a file system.
	NoCatalogIndex bool
	// NoCatalogBuild keeps a catalog request from building the index when
	// it is not complete (the walk serves it then): a read-only server
	// (storage.maintenance.readonly) writes nothing.
	NoCatalogBuild bool
}

// ManifestValidation mirrors Distribution's validation.manifests section.
type ManifestValidation struct {
	// Disabled skips the check that referenced blobs and manifests exist
	// (validation.disabled).
	Disabled bool
	// URLsAllow and URLsDeny are regular expressions (urls.allow,
	// urls.deny). A layer descriptor with urls is accepted without its blob
	// in the repository only when every URL matches an allow pattern and
	// none matches a deny pattern; with no allow patterns, urls are refused.
	URLsAllow []string
	URLsDeny  []string
	// IndexPlatforms is indexes.platforms: "all" (the default: every child
	// of an index must exist), "none" (none is checked) or "list" (only the
	// children whose platform is in IndexPlatformList).
	IndexPlatforms    string
	IndexPlatformList []Platform
}

// Platform is an os/architecture pair of indexes.platformlist.
type Platform struct {
	OS           string
	Architecture string
}

// Repository is the content of one named repository, as returned by
// (*Registry).Repository. Names are validated by the caller.
type Repository interface {
	Name() string

	// Blobs.
	StatBlob(ctx context.Context, d digest.Digest) (Descriptor, error)
	OpenBlob(ctx context.Context, d digest.Digest) (Blob, error)
	// BlobRedirectURL is a URL to send the client to for the blob's bytes
	// (a presigned URL, a CDN's), or "" to serve them.
	BlobRedirectURL(req *http.Request, d digest.Digest) (string, error)
	DeleteBlob(ctx context.Context, d digest.Digest) error
	// MountBlob links a blob into this repository from where src
	// allows: a repository that links it, or the global store.
	MountBlob(ctx context.Context, src MountSource, d digest.Digest) (Descriptor, error)

	// Uploads.
	NewUpload(ctx context.Context) (Upload, error)
	// ResumeUpload opens the upload id for this request alone: while it
	// is open, other requests on it get a *BusyError (ErrUploadBusy).
	ResumeUpload(ctx context.Context, id string) (Upload, error)
	// StatUpload tells how many bytes the upload id holds, writing
	// nothing.
	StatUpload(ctx context.Context, id string) (int64, error)

	// Manifests and tags. ref is a tag or a digest.
	GetManifest(ctx context.Context, ref string) (Manifest, error)
	StatManifest(ctx context.Context, ref string) (Descriptor, error)
	// PutManifest validates and stores payload under its digest (computed
	// with the algorithm of ref when ref is a digest, else sha256) and, when
	// ref is a tag, points the tag at it. mediaType is the request's
	// Content-Type.
	PutManifest(ctx context.Context, ref string, mediaType string, payload []byte) (Manifest, error)
	// Tag points tag at the manifest d already in the repository, whatever
	// its digest algorithm (PUT …/manifests/<digest>?tag=…).
	Tag(ctx context.Context, tag string, d digest.Digest) error
	DeleteManifest(ctx context.Context, d digest.Digest) error
	DeleteTag(ctx context.Context, tag string) error
	// Tags returns up to n tags sorted lexically after last (n <= 0: all),
	// and whether more follow them, for a Link to the next page.
	Tags(ctx context.Context, n int, last string) (tags []string, more bool, err error)
	// Referrers lists the manifests whose subject is d, filtered to
	// artifactType when it is not "".
	Referrers(ctx context.Context, d digest.Digest, artifactType string) ([]Referrer, error)
}

// The Registry type (registry.go) ties it together:
//
//	func New(d driver.Driver, opts Options, log *slog.Logger) *Registry
//	func (r *Registry) Repository(name string) Repository
//	func (r *Registry) Catalog(ctx context.Context, n int, last string) ([]string, error)
//	func (r *Registry) Driver() driver.Driver
