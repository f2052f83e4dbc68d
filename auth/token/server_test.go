package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testIssuer  = "test-token-issuer"
	testService = "berth-test"
)

// issuer is a tiny token service for tests: it holds an RSA key whose
// certificate chains to a CA in the registry's root bundle (sent as x5c),
// an ES256 and an Ed25519 key published in a JWKS (found by kid), and a
// policy of what each user may do.
type issuer struct {
	t       *testing.T
	caPEM   string // path of the root bundle
	jwks    string // path of the JWKS
	leafKey *rsa.PrivateKey
	chain   []*x509.Certificate
	ecKey   *ecdsa.PrivateKey
	edKey   ed25519.PrivateKey
	// policy: user → "type:name" → actions granted.
	policy map[string]map[string][]string
	srv    *httptest.Server
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test token CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "token signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	is := &issuer{t: t, leafKey: leafKey, chain: []*x509.Certificate{leaf}, policy: map[string]map[string][]string{}}
	is.caPEM = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(is.caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	is.ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, is.edKey, _ = ed25519.GenerateKey(rand.Reader)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &is.ecKey.PublicKey, KeyID: "ec-key", Algorithm: string(jose.ES256), Use: "sig"},
		{Key: is.edKey.Public(), KeyID: "ed-key", Algorithm: string(jose.EdDSA), Use: "sig"},
	}}
	b, _ := json.Marshal(set)
	is.jwks = filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(is.jwks, b, 0o600); err != nil {
		t.Fatal(err)
	}
	is.srv = httptest.NewServer(http.HandlerFunc(is.serveToken))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) realm() string { return is.srv.URL + "/token" }

func (is *issuer) options() Options {
	return Options{Realm: is.realm(), Service: testService, Issuer: testIssuer, RootCertBundle: is.caPEM, JWKS: is.jwks}
}

// grant lets user do actions on "type:name".
func (is *issuer) grant(user, resource string, actions ...string) {
	if is.policy[user] == nil {
		is.policy[user] = map[string][]string{}
	}
	is.policy[user][resource] = actions
}

// serveToken answers GET /token?service=…&scope=… as the spec says: the
// user (basic auth, password = user name) gets the intersection of what
// was asked and what the policy allows.
func (is *issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	user, pass, _ := r.BasicAuth()
	if user != pass {
		http.Error(w, "bad credentials", http.StatusUnauthorized)
		return
	}
	if r.URL.Query().Get("service") != testService {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	var access []accessClaim
	for _, sc := range r.URL.Query()["scope"] {
		for _, one := range strings.Fields(sc) {
			parts := strings.Split(one, ":")
			if len(parts) < 3 {
				continue
			}
			typ, name, asked := parts[0], strings.Join(parts[1:len(parts)-1], ":"), strings.Split(parts[len(parts)-1], ",")
			var ok []string
			for _, a := range asked {
				for _, g := range is.policy[user][typ+":"+name] {
					if a == g {
						ok = append(ok, a)
					}
				}
			}
			access = append(access, accessClaim{Type: typ, Name: name, Actions: ok})
		}
	}
	tok := is.mint(user, access, nil)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": tok, "access_token": tok})
}

// claimsFor are valid claims for subject with access; edit changes them.
func claimsFor(subject string, access []accessClaim, edit func(*claims)) claims {
	now := time.Now()
	cl := claims{
		Claims: jwt.Claims{
			Issuer: testIssuer, Subject: subject, Audience: jwt.Audience{testService},
			Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			IssuedAt: jwt.NewNumericDate(now), ID: "jti",
		},
		Access: access,
	}
	if edit != nil {
		edit(&cl)
	}
	return cl
}

// mint signs claims with the x5c RSA key.
func (is *issuer) mint(subject string, access []accessClaim, edit func(*claims)) string {
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("x5c", x5c(is.chain))
	return sign(is.t, jose.SigningKey{Algorithm: jose.RS256, Key: is.leafKey}, opts, claimsFor(subject, access, edit))
}

func x5c(chain []*x509.Certificate) []string {
	var out []string
	for _, c := range chain {
		out = append(out, base64.StdEncoding.EncodeToString(c.Raw))
	}
	return out
}

func sign(t *testing.T, key jose.SigningKey, opts *jose.SignerOptions, cl claims) string {
	t.Helper()
	s, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(cl).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signKid signs claims with key, naming kid in the header.
func signKid(t *testing.T, alg jose.SignatureAlgorithm, key crypto.Signer, kid string, cl claims) string {
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid)
	return sign(t, jose.SigningKey{Algorithm: alg, Key: key}, opts, cl)
}
