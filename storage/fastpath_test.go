package storage

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

// The fast checks of hot paths must never accept what the full grammar
// refuses; refusing what it accepts only costs the slow path.
func TestPlainNameIsSubsetOfGrammar(t *testing.T) {
	alphabet := []byte("a0._-/A")
	var gen func(prefix []byte, n int)
	gen = func(prefix []byte, n int) {
		if s := string(prefix); plainName(s) && !repoNamePattern.MatchString(s) {
			t.Fatalf("plainName(%q) but the grammar refuses it", s)
		}
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c), n-1)
		}
	}
	gen(nil, 6)
	for _, s := range []string{"a", "a/b", "library/ubuntu", "a-b.c_d/e"} {
		if !plainName(s) {
			t.Errorf("plainName(%q) = false, want true", s)
		}
	}
}

func TestCanonicalHexAgreesWithValidate(t *testing.T) {
	hex64 := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, s := range []string{
		"sha256:" + hex64,
		"sha512:" + hex64 + hex64,
		"sha256:" + hex64[:63],
		"sha256:" + hex64 + "0",
		"sha256:" + hex64[:63] + "A",
		"sha256:" + hex64[:63] + "g",
		"sha512:" + hex64,
		"sha384:" + hex64,
		"sha256" + hex64,
		"",
	} {
		want := digest.Digest(s).Validate() == nil && supportedAlgorithm(digest.Digest(s).Algorithm())
		if got := canonicalHex(s); got && !want {
			t.Errorf("canonicalHex(%q) = true, but the digest is invalid", s)
		}
		if got := validDigest(digest.Digest(s)) == nil; got != want {
			t.Errorf("validDigest(%q) ok = %v, want %v", s, got, want)
		}
	}
}
