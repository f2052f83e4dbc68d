package token

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// trust is what the registry believes: root certificates that x5c chains
// must end in, and public keys by kid.
type trust struct {
	roots *x509.CertPool
	keys  map[string]crypto.PublicKey
}

// loadTrust reads the root certificate bundle (PEM) and the JWKS (JSON).
// Each root certificate's key is also trusted by its libtrust key ID, the
// kid that token services written for Distribution put in the header.
func loadTrust(bundle, jwksPath string) (*trust, error) {
	t := &trust{roots: x509.NewCertPool(), keys: make(map[string]crypto.PublicKey)}
	if bundle != "" {
		b, err := os.ReadFile(bundle)
		if err != nil {
			return nil, fmt.Errorf("rootcertbundle: %w", err)
		}
		n := 0
		for {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("rootcertbundle %s: %w", bundle, err)
			}
			t.roots.AddCert(cert)
			if id, err := libtrustKeyID(cert.PublicKey); err == nil {
				t.keys[id] = cert.PublicKey
			}
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("rootcertbundle %s: no certificate", bundle)
		}
	}
	if jwksPath != "" {
		b, err := os.ReadFile(jwksPath)
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(b, &set); err != nil {
			return nil, fmt.Errorf("jwks %s: %w", jwksPath, err)
		}
		for _, k := range set.Keys {
			if k.KeyID == "" {
				return nil, fmt.Errorf("jwks %s: a key has no kid", jwksPath)
			}
			if !k.IsPublic() {
				return nil, fmt.Errorf("jwks %s: key %q is not a public key", jwksPath, k.KeyID)
			}
			t.keys[k.KeyID] = k.Key
		}
	}
	return t, nil
}

// key returns the trusted key that must have signed a token with header
// h: the leaf of an x5c chain that verifies to a root, or the key named
// by kid. A key embedded in the header (jwk) is never trusted by itself.
func (t *trust) key(h jose.Header) (crypto.PublicKey, error) {
	chains, err := h.Certificates(x509.VerifyOptions{Roots: t.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	switch {
	case err == nil:
		return chains[0][0].PublicKey, nil
	case !errors.Is(err, jose.ErrMissingX5cHeader):
		return nil, fmt.Errorf("%w: x5c: %w", ErrUntrustedKey, err)
	}
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: neither x5c nor kid", ErrUntrustedKey)
	}
	k, ok := t.keys[h.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w: unknown kid %q", ErrUntrustedKey, h.KeyID)
	}
	return k, nil
}

// libtrustKeyID is the key ID of docker/libtrust: the SHA-256 of the DER
// public key, truncated to 240 bits, in base32 groups of four.
func libtrustKeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	s := base32.StdEncoding.EncodeToString(sum[:30])
	var groups []string
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:i+4])
	}
	return strings.Join(groups, ":"), nil
}
