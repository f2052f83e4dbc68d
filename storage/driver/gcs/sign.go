package gcs

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// signer makes V4 signed URLs (GOOG4-RSA-SHA256) with a service account's
// key, as GCS documents them: a canonical request of the method, the path,
// the X-Goog-* query and the host header, whose SHA-256 is signed with
// RSA PKCS #1 v1.5 along with the time and the credential scope.
type signer struct {
	email string
	key   *rsa.PrivateKey
	// host is where URLs point; insecure makes them http.
	host     string
	insecure bool
}

// parseKey reads a service account's private key, PKCS #8 or PKCS #1 in
// PEM, as JSON keys carry it.
func parseKey(pemKey string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemKey))
	if block == nil {
		return nil, errors.New("private_key is not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private_key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private_key is a %T, not an RSA key", k)
	}
	return rk, nil
}

// sign returns the URL that lets its bearer send method to the object key
// of bucket from now until now+expiry.
func (s *signer) sign(method, bucket, key string, now time.Time, expiry time.Duration) (string, error) {
	now = now.UTC()
	stamp := now.Format("20060102T150405Z")
	scope := now.Format("20060102") + "/auto/storage/goog4_request"
	path := "/" + escapePath(bucket+"/"+key)
	query := url.Values{
		"X-Goog-Algorithm":     {"GOOG4-RSA-SHA256"},
		"X-Goog-Credential":    {s.email + "/" + scope},
		"X-Goog-Date":          {stamp},
		"X-Goog-Expires":       {strconv.Itoa(int(expiry.Seconds()))},
		"X-Goog-SignedHeaders": {"host"},
	}
	// Encode sorts by name; a space must be %20 in the canonical form.
	canonicalQuery := strings.ReplaceAll(query.Encode(), "+", "%20")
	// The host header signed is the name without a port, as Google's
	// client libraries sign it; GCS's own host has none.
	host := s.host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	canonical := strings.Join([]string{method, path, canonicalQuery, "host:" + host, "", "host", "UNSIGNED-PAYLOAD"}, "\n")
	reqSum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{"GOOG4-RSA-SHA256", stamp, scope, hex.EncodeToString(reqSum[:])}, "\n")
	sum := sha256.Sum256([]byte(toSign))
	sig, err := rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	scheme := "https"
	if s.insecure {
		scheme = "http"
	}
	query.Set("X-Goog-Signature", hex.EncodeToString(sig))
	return scheme + "://" + s.host + path + "?" + query.Encode(), nil
}

// escapePath percent-encodes every byte of p but RFC 3986's unreserved
// ones and "/", which is the canonical form V4 signing requires.
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
