package registry

import (
	// The digest package hashes with whatever crypto registered; Berth
	// accepts sha256 and sha512.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"regexp"
	"strings"

	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
)

// maxNameLength bounds a repository name as CNCF Distribution does.
const maxNameLength = 255

// uploadIDRE keeps an upload id a single safe path component.
var uploadIDRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// validName reports whether name is a repository name of the spec's
// grammar; the storage package owns the grammar, as it guards paths with it.
func validName(name string) bool { return storage.ValidRepositoryName(name) }

func validTag(tag string) bool { return storage.ValidTag(tag) }

func checkName(name string) error {
	if !validName(name) {
		return &Error{Code: CodeNameInvalid, Detail: map[string]string{"name": truncate(name, maxNameLength+1)}}
	}
	return nil
}

func checkTag(tag string) error {
	if !validTag(tag) {
		return &Error{Code: CodeTagInvalid, Detail: map[string]string{"tag": truncate(tag, 256)}}
	}
	return nil
}

// parseDigest parses a digest of a supported algorithm (sha256 or sha512).
func parseDigest(s string) (digest.Digest, error) {
	if s == "" {
		return "", apiErr(CodeDigestInvalid, "digest missing")
	}
	if canonicalHex(s) {
		// The common case, without digest.Parse's regular expression.
		return digest.Digest(s), nil
	}
	d, err := digest.Parse(s)
	if err != nil {
		if errors.Is(err, digest.ErrDigestUnsupported) {
			return "", &Error{Code: CodeDigestInvalid, Message: "unsupported digest algorithm", Detail: map[string]string{"digest": truncate(s, 256)}, Err: err}
		}
		return "", &Error{Code: CodeDigestInvalid, Message: "invalid digest", Detail: map[string]string{"digest": truncate(s, 256)}, Err: err}
	}
	if a := d.Algorithm(); a != digest.SHA256 && a != digest.SHA512 {
		return "", &Error{Code: CodeDigestInvalid, Message: "unsupported digest algorithm", Detail: map[string]string{"digest": truncate(s, 256)}}
	}
	return d, nil
}

// canonicalHex reports whether s is a sha256 or sha512 digest in the
// canonical form: the algorithm and the lower-case hex of its length.
func canonicalHex(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return false
	case alg == "sha256" && len(hex) == 64, alg == "sha512" && len(hex) == 128:
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

// isDigestRef tells a manifest reference that is meant as a digest (it has
// the algorithm separator, which no tag has) from a tag.
func isDigestRef(ref string) bool {
	return strings.Contains(ref, ":")
}

// truncate keeps what a client sent from bloating an error body.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
