package storage

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// The on-storage layout is CNCF Distribution's, so that either program
// serves a tree the other wrote:
//
//	/docker/registry/v2/blobs/<alg>/<hex[:2]>/<hex>/data
//	/docker/registry/v2/repositories/<name>/_layers/<alg>/<hex>/link
//	/docker/registry/v2/repositories/<name>/_manifests/revisions/<alg>/<hex>/link
//	/docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
//	/docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
//	/docker/registry/v2/repositories/<name>/_uploads/<id>/{data,startedat,hashstates/<alg>/<offset>}
//
// Berth adds one index Distribution has no notion of (and ignores, as it
// skips every directory whose name starts with "_"):
//
//	/docker/registry/v2/repositories/<name>/_referrers/<subject alg>/<subject hex>/<alg>/<hex>/link
//
// and, in each upload session, the numbered claims of its lease
// (uploadLeaseDir), which Distribution neither reads nor minds:
//
//	/docker/registry/v2/repositories/<name>/_uploads/<id>/<000000000001…>
//
// and, beside the repositories, under _berth (which Distribution never
// reads), the leases and tombstones of garbage collection (gcfence.go) and,
// on an object store, the catalog index (catalogindex.go):
//
//	/docker/registry/v2/_berth/catalog/names/<hex of the repository name>
//
// A link file holds a digest string ("sha256:…") with no newline.
const (
	rootPath         = "/docker/registry/v2"
	blobsRoot        = rootPath + "/blobs"
	repositoriesRoot = rootPath + "/repositories"
)

// Every function below takes values that were validated (validDigest,
// validTag, validUploadID, validRepoName): nothing a client sends reaches a
// driver path otherwise.

func blobDataPath(d digest.Digest) string {
	hex := d.Encoded()
	return blobsRoot + "/" + string(d.Algorithm()) + "/" + hex[:2] + "/" + hex + "/data"
}

func repoPath(name string) string { return repositoriesRoot + "/" + name }

func digestDir(d digest.Digest) string { return string(d.Algorithm()) + "/" + d.Encoded() }

func layerLinkPath(name string, d digest.Digest) string {
	return repoPath(name) + "/_layers/" + digestDir(d) + "/link"
}

func revisionDir(name string, d digest.Digest) string {
	return repoPath(name) + "/_manifests/revisions/" + digestDir(d)
}

func revisionLinkPath(name string, d digest.Digest) string { return revisionDir(name, d) + "/link" }

func tagsDir(name string) string { return repoPath(name) + "/_manifests/tags" }

func tagDir(name, tag string) string { return tagsDir(name) + "/" + tag }

func tagCurrentLinkPath(name, tag string) string { return tagDir(name, tag) + "/current/link" }

func tagIndexLinkPath(name, tag string, d digest.Digest) string {
	return tagDir(name, tag) + "/index/" + digestDir(d) + "/link"
}

func uploadsDir(name string) string { return repoPath(name) + "/_uploads" }

func uploadDir(name, id string) string { return uploadsDir(name) + "/" + id }

func uploadDataPath(name, id string) string { return uploadDir(name, id) + "/data" }

func uploadStartedAtPath(name, id string) string { return uploadDir(name, id) + "/startedat" }

// uploadLeaseDir holds the claims of the session's lease (lease.go), one
// writer at a time: the session's own directory, where they are numbered
// files beside data and startedat. Distribution ignores them and removes
// them with the session. Sessions started before 7 December 2026 hold them
// in a subdirectory, oldLeaseDir, which currentClaim still follows: a
// directory more to make and remove for every blob pushed, which on a
// file system was most of what creating and removing a session cost.
func uploadLeaseDir(name, id string) string { return uploadDir(name, id) }

// oldLeaseDir is the subdirectory of an upload session that held its
// claims before they moved up into the session's directory.
const oldLeaseDir = "lease"

func uploadHashStatePath(name, id string, alg digest.Algorithm, offset int64) string {
	return fmt.Sprintf("%s/hashstates/%s/%d", uploadDir(name, id), alg, offset)
}

func referrersDir(name string, subject digest.Digest) string {
	return repoPath(name) + "/_referrers/" + digestDir(subject)
}

func referrerLinkDir(name string, subject, d digest.Digest) string {
	return referrersDir(name, subject) + "/" + digestDir(d)
}

// supportedAlgorithms are the digest algorithms of the OCI image spec.
// go-digest also knows sha384, which no client uses and the spec does not
// register; refusing it keeps the layout to what Distribution can read.
func supportedAlgorithm(a digest.Algorithm) bool {
	return a == digest.SHA256 || a == digest.SHA512
}

// validDigest checks a client-supplied digest: ErrUnsupportedDigest for an
// algorithm Berth does not hash with, ErrDigestInvalid for anything else
// malformed. A valid digest is safe in a path.
func validDigest(d digest.Digest) error {
	if canonicalHex(string(d)) {
		return nil
	}
	i := strings.IndexByte(string(d), ':')
	if i <= 0 {
		return &Error{Err: ErrDigestInvalid, Detail: "malformed digest", Digest: d}
	}
	if !supportedAlgorithm(digest.Algorithm(d[:i])) {
		return &Error{Err: ErrUnsupportedDigest, Detail: "algorithm " + string(d[:i]), Digest: d}
	}
	if err := d.Validate(); err != nil {
		return &Error{Err: ErrDigestInvalid, Detail: "malformed digest", Digest: d}
	}
	return nil
}

// canonicalHex reports whether s is a sha256 or sha512 digest in the
// canonical form (lower-case hex of the right length): what nearly every
// request carries, checked here without the regular expression of
// digest.Validate, which shows in the profile of a HEAD.
func canonicalHex(s string) bool {
	var hex string
	switch {
	case strings.HasPrefix(s, "sha256:"):
		hex = s[len("sha256:"):]
		if len(hex) != 64 {
			return false
		}
	case strings.HasPrefix(s, "sha512:"):
		hex = s[len("sha512:"):]
		if len(hex) != 128 {
			return false
		}
	default:
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// The reference grammar of the distribution spec.
var (
	tagPattern      = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	repoNamePattern = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	uploadIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// ValidTag reports whether tag is a tag of the distribution spec's grammar.
func ValidTag(tag string) bool { return tagPattern.MatchString(tag) }

// ValidRepositoryName checks a name against the spec's grammar and the length
// Distribution allows. Components never start with "_", so a name cannot
// reach into _layers, _manifests or _uploads.
func ValidRepositoryName(name string) bool {
	return len(name) <= 255 && (plainName(name) || repoNamePattern.MatchString(name))
}

// plainName reports whether name is in the common subset of the
// repository grammar (components of [a-z0-9] joined by single '.', '_'
// or '-'), checked without the regular expression, which shows in the
// profile of a HEAD. Anything else goes to the full grammar.
func plainName(name string) bool {
	prevSep := true // at the start of a component
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			prevSep = false
		case c == '.' || c == '_' || c == '-' || c == '/':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

func validUploadID(id string) bool { return uploadIDPattern.MatchString(id) }

// newUploadID returns a random (version 4) UUID, the form Distribution uses.
func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// isDigestRef tells whether a manifest reference is a digest (it holds
// a ':', which a tag cannot).
func isDigestRef(ref string) bool { return strings.Contains(ref, ":") }

// ValidDigest tells whether storage takes d: ErrUnsupportedDigest for an
// algorithm Berth does not hash with, ErrDigestInvalid for anything else
// malformed.
func ValidDigest(d digest.Digest) error { return validDigest(d) }
