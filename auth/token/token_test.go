package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	_ "github.com/berth-registry/berth/storage/driver/inmemory"
)

type env struct {
	t   *testing.T
	is  *issuer
	srv *httptest.Server
	d   driver.Driver
}

func newEnv(t *testing.T) *env {
	t.Helper()
	is := newIssuer(t)
	c, err := New(is.options(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := storage.New(d, storage.Options{}, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(registry.New(reg, registry.Options{Authorize: c.Authorize}, nil))
	t.Cleanup(srv.Close)
	return &env{t: t, is: is, srv: srv, d: d}
}

func (e *env) do(method, path, tok string, body []byte) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// fetch gets a token from the issuer for user as a client would, with
// the scope of a challenge.
func (e *env) fetch(user string, scope ...string) string {
	e.t.Helper()
	q := url.Values{"service": {testService}, "scope": scope}
	req, _ := http.NewRequest(http.MethodGet, e.is.realm()+"?"+q.Encode(), nil)
	req.SetBasicAuth(user, user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatal(err)
	}
	return out.Token
}

// pushBlob uploads b to repo in one POST and returns its digest.
func (e *env) pushBlob(repo, tok string, b []byte) string {
	e.t.Helper()
	dg := fmt.Sprintf("sha256:%x", sha256.Sum256(b))
	resp, body := e.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+dg, tok, b)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("push blob: %d %s", resp.StatusCode, body)
	}
	return dg
}

// names lists what is stored under a repository's layer links.
func (e *env) linked(repo string) []string {
	names, _ := e.d.List(context.Background(), "/docker/registry/v2/repositories/"+repo+"/_layers/sha256")
	return names
}

func (e *env) storedAnything() bool {
	names, _ := e.d.List(context.Background(), "/")
	return len(names) > 0
}

func expect401(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401; body %s", resp.StatusCode, body)
	}
	var eb struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) == 0 || eb.Errors[0].Code != "UNAUTHORIZED" {
		t.Fatalf("body %s, want an UNAUTHORIZED error", body)
	}
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
	}
}

func TestChallengeNamesRealmServiceAndScope(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path, scope string
	}{
		{http.MethodGet, "/v2/", ""},
		{http.MethodGet, "/v2/app/tags/list", "repository:app:pull"},
		{http.MethodPost, "/v2/app/blobs/uploads/", "repository:app:pull,push"},
		{http.MethodPost, "/v2/app/blobs/uploads/?mount=sha256:" + strings.Repeat("a", 64) + "&from=base", "repository:app:pull,push repository:base:pull"},
		{http.MethodDelete, "/v2/app/manifests/sha256:" + strings.Repeat("a", 64), "repository:app:delete"},
		{http.MethodGet, "/v2/_catalog", "registry:catalog:*"},
		{http.MethodGet, "/v2/team/app/referrers/sha256:" + strings.Repeat("b", 64), "repository:team/app:pull"},
		{http.MethodPut, "/v2/team/app/manifests/v1", "repository:team/app:pull,push"},
		{http.MethodHead, "/v2/team/app/blobs/sha256:" + strings.Repeat("c", 64), "repository:team/app:pull"},
		{http.MethodPatch, "/v2/team/app/blobs/uploads/some-id", "repository:team/app:pull,push"},
	}
	for _, tc := range tests {
		resp, body := e.do(tc.method, tc.path, "", nil)
		if tc.method == http.MethodHead {
			// No body to check on a HEAD.
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("HEAD %s: status %d, want 401", tc.path, resp.StatusCode)
			}
		} else {
			expect401(t, resp, body)
		}
		want := fmt.Sprintf("Bearer realm=%q,service=%q", e.is.realm(), testService)
		if tc.scope != "" {
			want += fmt.Sprintf(",scope=%q", tc.scope)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != want {
			t.Errorf("%s %s: challenge %q, want %q", tc.method, tc.path, got, want)
		}
	}
	if e.storedAnything() {
		t.Fatal("refused requests stored something")
	}
}

func TestTokenFromIssuerAllowsGrantedPushAndPull(t *testing.T) {
	e := newEnv(t)
	e.is.grant("alice", "repository:app", "pull", "push")
	e.is.grant("alice", "registry:catalog", "*")
	tok := e.fetch("alice", "repository:app:pull,push")
	dg := e.pushBlob("app", tok, []byte("layer"))
	if resp, body := e.do(http.MethodGet, "/v2/app/blobs/"+dg, tok, nil); resp.StatusCode != http.StatusOK || string(body) != "layer" {
		t.Fatalf("pull: %d %s", resp.StatusCode, body)
	}
	cat := e.fetch("alice", "registry:catalog:*")
	if resp, body := e.do(http.MethodGet, "/v2/_catalog", cat, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("catalog: %d %s", resp.StatusCode, body)
	}
	// The catalog token grants nothing on the repository.
	resp, body := e.do(http.MethodGet, "/v2/app/blobs/"+dg, cat, nil)
	expect401(t, resp, body)
}

func TestRefusedTokensGet401AndStoreNothing(t *testing.T) {
	e := newEnv(t)
	push := []accessClaim{{Type: "repository", Name: "app", Actions: []string{"pull", "push"}}}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	selfSigned := selfSignedCert(t, otherKey)
	tests := []struct {
		name string
		tok  string
	}{
		{"expired", e.is.mint("alice", push, func(c *claims) {
			c.Expiry = jwt.NewNumericDate(time.Now().Add(-10 * time.Minute))
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(-20 * time.Minute))
		})},
		{"not yet valid", e.is.mint("alice", push, func(c *claims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(10 * time.Minute)) })},
		{"no expiry", e.is.mint("alice", push, func(c *claims) { c.Expiry = nil })},
		{"other audience", e.is.mint("alice", push, func(c *claims) { c.Audience = jwt.Audience{"other-registry"} })},
		{"other issuer", e.is.mint("alice", push, func(c *claims) { c.Issuer = "evil" })},
		{"other repository", e.is.mint("alice", []accessClaim{{Type: "repository", Name: "other", Actions: []string{"pull", "push"}}}, nil)},
		{"pull only", e.is.mint("alice", []accessClaim{{Type: "repository", Name: "app", Actions: []string{"pull"}}}, nil)},
		{"no access", e.is.mint("alice", nil, nil)},
		{"forged signature", forge(e.is.mint("alice", push, nil))},
		{"untrusted x5c", sign(t, jose.SigningKey{Algorithm: jose.RS256, Key: otherKey},
			(&jose.SignerOptions{}).WithHeader("x5c", x5c([]*x509.Certificate{selfSigned})), claimsFor("alice", push, nil))},
		{"known kid other key", signKid(t, jose.RS256, otherKey, "ec-key", claimsFor("alice", push, nil))},
		{"unknown kid", signKid(t, jose.RS256, otherKey, "nobody", claimsFor("alice", push, nil))},
		{"alg none", algNone(t, claimsFor("alice", push, nil))},
		{"HS256 with public key as secret", hmacToken(t, e.is, claimsFor("alice", push, nil))},
		{"garbage", "not.a.token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do(http.MethodPost, "/v2/app/blobs/uploads/?digest=sha256:"+fmt.Sprintf("%x", sha256.Sum256([]byte("x"))), tc.tok, []byte("x"))
			expect401(t, resp, body)
			if e.storedAnything() {
				t.Fatal("refused push stored something")
			}
		})
	}
}

func TestMountNeedsPullOnSource(t *testing.T) {
	e := newEnv(t)
	e.is.grant("admin", "repository:secret", "pull", "push")
	e.is.grant("mallory", "repository:mine", "pull", "push")
	e.is.grant("bob", "repository:mine", "pull", "push")
	e.is.grant("bob", "repository:secret", "pull")
	dg := e.pushBlob("secret", e.fetch("admin", "repository:secret:pull,push"), []byte("secret layer"))

	mount := "/v2/mine/blobs/uploads/?mount=" + dg + "&from=secret"
	tok := e.fetch("mallory", "repository:mine:pull,push", "repository:secret:pull")
	resp, body := e.do(http.MethodPost, mount, tok, nil)
	expect401(t, resp, body)
	if got := e.linked("mine"); len(got) != 0 {
		t.Fatalf("denied mount linked %v into mine", got)
	}
	if resp, _ := e.do(http.MethodHead, "/v2/mine/blobs/"+dg, tok, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("blob visible in mine after denied mount: %d", resp.StatusCode)
	}

	tok = e.fetch("bob", "repository:mine:pull,push", "repository:secret:pull")
	if resp, body := e.do(http.MethodPost, mount, tok, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("allowed mount: %d %s", resp.StatusCode, body)
	}
}

func TestKeysFromJWKSAreFoundByKid(t *testing.T) {
	e := newEnv(t)
	pull := []accessClaim{{Type: "repository", Name: "app", Actions: []string{"pull"}}}
	for name, tok := range map[string]string{
		"ES256": signKid(t, jose.ES256, e.is.ecKey, "ec-key", claimsFor("carol", pull, nil)),
		"EdDSA": signKid(t, jose.EdDSA, e.is.edKey, "ed-key", claimsFor("carol", pull, nil)),
	} {
		// Not found (404), not refused (401): the token was accepted.
		if resp, body := e.do(http.MethodGet, "/v2/app/tags/list", tok, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
}

func TestAuthorizePutsSubjectInContext(t *testing.T) {
	is := newIssuer(t)
	c, err := New(is.options(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	req.Header.Set("Authorization", "Bearer "+is.mint("dave", nil, nil))
	r2, err := c.Authorize(httptest.NewRecorder(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := registry.UserFromContext(r2.Context()); got != "dave" {
		t.Fatalf("user %q", got)
	}
}

func TestNewRefusesUnsafeOrIncompleteOptions(t *testing.T) {
	is := newIssuer(t)
	tests := map[string]func(*Options){
		"HS256":          func(o *Options) { o.SigningAlgorithms = []string{"RS256", "HS256"} },
		"none":           func(o *Options) { o.SigningAlgorithms = []string{"none"} },
		"no keys":        func(o *Options) { o.RootCertBundle, o.JWKS = "", "" },
		"no service":     func(o *Options) { o.Service = "" },
		"no issuer":      func(o *Options) { o.Issuer = "" },
		"missing bundle": func(o *Options) { o.RootCertBundle = is.caPEM + ".missing" },
	}
	for name, edit := range tests {
		o := is.options()
		edit(&o)
		if _, err := New(o, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAutoRedirectRealmIsTheRegistryHost(t *testing.T) {
	is := newIssuer(t)
	o := is.options()
	o.Realm, o.AutoRedirect = "", true
	c, err := New(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://reg.example:5000/v2/", nil)
	if _, err := c.Authorize(w, req, nil); !errors.Is(err, ErrNoToken) {
		t.Fatalf("err %v", err)
	}
	if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="http://reg.example:5000/auth/token"`) {
		t.Fatalf("challenge %q", got)
	}
}

func TestLibtrustKeyIDFormat(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, err := libtrustKeyID(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 59 || strings.Count(id, ":") != 11 {
		t.Fatalf("key id %q is not 12 groups of 4", id)
	}
}

// forge flips a byte of the signature.
func forge(tok string) string {
	parts := strings.Split(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)/2] ^= 0xff
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(parts, ".")
}

func algNone(t *testing.T, cl claims) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": "ec-key"})
	c, err := json.Marshal(cl)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// hmacToken is the classic algorithm-confusion attack: HS256 keyed with
// bytes of a trusted public key.
func hmacToken(t *testing.T, is *issuer, cl claims) string {
	der, _ := x509.MarshalPKIXPublicKey(&is.ecKey.PublicKey)
	opts := (&jose.SignerOptions{}).WithHeader("kid", "ec-key")
	return sign(t, jose.SigningKey{Algorithm: jose.HS256, Key: der}, opts, cl)
}

func selfSignedCert(t *testing.T, key *rsa.PrivateKey) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "forger"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}
