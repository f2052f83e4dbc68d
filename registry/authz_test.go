package registry_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/auth/htpasswd"
	"github.com/berth-registry/berth/auth/token"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	_ "github.com/berth-registry/berth/storage/driver/inmemory"
)

// The repositories of the authorization table: the caller's own
// repository (team/app) and another one it may or may not be granted
// (other/repo), holding a private blob.
const (
	ownRepo     = "team/app"
	otherRepo   = "other/repo"
	authzIssuer = "authz-test-issuer"
	authzSvc    = "authz-test-service"
)

// authMode is one column of the table: how the registry authenticates
// and what the caller presents.
type authMode struct {
	name string
	// kind is "none", "htpasswd" or "token".
	kind     string
	readOnly bool
	// user and pass are basic credentials; user "" sends none.
	user, pass string
	// access is the token's access claim; nil sends no token.
	access []accessClaim
}

type accessClaim struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func repoClaim(name string, actions ...string) accessClaim {
	return accessClaim{Type: "repository", Name: name, Actions: actions}
}

// authModes are the columns, in the order of every row's want.
var authModes = []authMode{
	{name: "none", kind: "none"},
	{name: "none-readonly", kind: "none", readOnly: true},
	{name: "basic-anonymous", kind: "htpasswd"},
	{name: "basic-wrong-password", kind: "htpasswd", user: "alice", pass: "wrong"},
	{name: "basic-unknown-user", kind: "htpasswd", user: "mallory", pass: "s3cret"},
	{name: "basic", kind: "htpasswd", user: "alice", pass: "s3cret"},
	{name: "basic-readonly", kind: "htpasswd", user: "alice", pass: "s3cret", readOnly: true},
	{name: "token-anonymous", kind: "token"},
	{name: "token-pull", kind: "token", access: []accessClaim{repoClaim(ownRepo, "pull")}},
	{name: "token-push", kind: "token", access: []accessClaim{repoClaim(ownRepo, "pull", "push")}},
	{name: "token-star", kind: "token", access: []accessClaim{repoClaim(ownRepo, "*")}},
	{name: "token-delete", kind: "token", access: []accessClaim{repoClaim(ownRepo, "delete")}},
	{name: "token-catalog", kind: "token", access: []accessClaim{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}},
	{name: "token-push-pull-other", kind: "token", access: []accessClaim{repoClaim(ownRepo, "pull", "push"), repoClaim(otherRepo, "pull")}},
	{name: "token-other-only", kind: "token", access: []accessClaim{repoClaim(otherRepo, "*")}},
	{name: "token-star-readonly", kind: "token", readOnly: true, access: []accessClaim{repoClaim(ownRepo, "*")}},
}

// authzRoute is one row: a request on ownRepo and its status in each mode.
// Placeholders in path are filled from the seeded fixture: {manifest},
// {layer}, {private} (a blob only other/repo links), {missing} (a blob
// nowhere), {upload} (a session of ownRepo), {chunk} (the digest of the
// body "x").
type authzRoute struct {
	name, method, path string
	body               string
	contentType        string
	// mount rows also check, when the answer is 202, that the blob did
	// not become readable in ownRepo.
	mount string
	want  [16]int
}

// Columns: none, none-ro, b-anon, b-wrong, b-unknown, basic, basic-ro,
// t-anon, t-pull, t-push, t-star, t-delete, t-catalog, t-push+other,
// t-other, t-star-ro.
var authzRoutes = []authzRoute{
	{name: "base", method: "GET", path: "/v2/",
		want: [16]int{200, 200, 401, 401, 401, 200, 200, 401, 200, 200, 200, 200, 200, 200, 200, 200}},
	{name: "base HEAD", method: "HEAD", path: "/v2/",
		want: [16]int{200, 200, 401, 401, 401, 200, 200, 401, 200, 200, 200, 200, 200, 200, 200, 200}},
	{name: "catalog", method: "GET", path: "/v2/_catalog",
		want: [16]int{200, 200, 401, 401, 401, 200, 200, 401, 401, 401, 401, 401, 200, 401, 401, 401}},
	{name: "tags list", method: "GET", path: "/v2/team/app/tags/list",
		want: [16]int{200, 200, 401, 401, 401, 200, 200, 401, 200, 200, 200, 401, 401, 200, 401, 200}},
	{name: "manifest GET", method: "GET", path: "/v2/team/app/manifests/v1",
		want: [16]int{200, 200, 401, 401, 401, 200, 200, 401, 200, 200, 200, 401, 401, 200, 401, 200}},
	{name: "manifest HEAD", method: "HEAD", path: "/v2/team/app/manifests/{manifest}",
		want: [16]int{200, 200, 401, 401, 401, 200, 200, 401, 200, 200, 200, 401, 401, 200, 401, 200}},
	{name: "manifest PUT", method: "PUT", path: "/v2/team/app/manifests/v2", body: "{manifestbody}", contentType: "application/vnd.oci.image.manifest.v1+json",
		want: [16]int{201, 405, 401, 401, 401, 201, 405, 401, 401, 201, 201, 401, 401, 201, 401, 405}},
	{name: "manifest DELETE", method: "DELETE", path: "/v2/team/app/manifests/{manifest}",
		want: [16]int{202, 405, 401, 401, 401, 202, 405, 401, 401, 401, 202, 202, 401, 401, 401, 405}},
	{name: "blob GET", method: "GET", path: "/v2/team/app/blobs/{layer}",
		want: [16]int{200, 200, 401, 401, 401, 200, 200, 401, 200, 200, 200, 401, 401, 200, 401, 200}},
	{name: "blob HEAD", method: "HEAD", path: "/v2/team/app/blobs/{layer}",
		want: [16]int{200, 200, 401, 401, 401, 200, 200, 401, 200, 200, 200, 401, 401, 200, 401, 200}},
	{name: "blob DELETE", method: "DELETE", path: "/v2/team/app/blobs/{layer}",
		want: [16]int{202, 405, 401, 401, 401, 202, 405, 401, 401, 401, 202, 202, 401, 401, 401, 405}},
	{name: "upload POST", method: "POST", path: "/v2/team/app/blobs/uploads/",
		want: [16]int{202, 405, 401, 401, 401, 202, 405, 401, 401, 202, 202, 401, 401, 202, 401, 405}},
	{name: "upload POST monolithic", method: "POST", path: "/v2/team/app/blobs/uploads/?digest={chunk}", body: "x",
		want: [16]int{201, 405, 401, 401, 401, 201, 405, 401, 401, 201, 201, 401, 401, 201, 401, 405}},
	{name: "upload PATCH", method: "PATCH", path: "/v2/team/app/blobs/uploads/{upload}", body: "x", contentType: "application/octet-stream",
		want: [16]int{202, 405, 401, 401, 401, 202, 405, 401, 401, 202, 202, 401, 401, 202, 401, 405}},
	{name: "upload PUT", method: "PUT", path: "/v2/team/app/blobs/uploads/{upload}?digest={chunk}", body: "x", contentType: "application/octet-stream",
		want: [16]int{201, 405, 401, 401, 401, 201, 405, 401, 401, 201, 201, 401, 401, 201, 401, 405}},
	// An upload session is part of a push: asking where it stands needs
	// push (a pull-only caller has no session), and it is refused in
	// read-only mode, where no session can go on.
	{name: "upload GET", method: "GET", path: "/v2/team/app/blobs/uploads/{upload}",
		want: [16]int{204, 405, 401, 401, 401, 204, 405, 401, 401, 204, 204, 401, 401, 204, 401, 405}},
	// Cancelling an upload is part of a push too: it needs push, not
	// delete (which is for content).
	{name: "upload DELETE", method: "DELETE", path: "/v2/team/app/blobs/uploads/{upload}",
		want: [16]int{204, 405, 401, 401, 401, 204, 405, 401, 401, 204, 204, 401, 401, 204, 401, 405}},
	// With from, the caller needs pull on from.
	{name: "mount from other", method: "POST", path: "/v2/team/app/blobs/uploads/?mount={private}&from=other/repo", mount: "{private}",
		want: [16]int{201, 405, 401, 401, 401, 201, 405, 401, 401, 401, 401, 401, 401, 201, 401, 401}},
	// from names a repository that does not link the blob: a normal
	// upload, whatever the rest of the registry holds.
	{name: "mount from own without the blob", method: "POST", path: "/v2/team/app/blobs/uploads/?mount={private}&from=team/app", mount: "{private}",
		want: [16]int{202, 405, 401, 401, 401, 202, 405, 401, 401, 202, 202, 401, 401, 202, 401, 405}},
	// from given twice: the first is the one asked for and the one used,
	// so a second from cannot smuggle in a source never authorized.
	{name: "mount from given twice", method: "POST", path: "/v2/team/app/blobs/uploads/?mount={private}&from=team/app&from=other/repo", mount: "{private}",
		want: [16]int{202, 405, 401, 401, 401, 202, 405, 401, 401, 202, 202, 401, 401, 202, 401, 405}},
	// Without from, only a repository the caller may pull is a source:
	// every repository under none and htpasswd, the token's own
	// otherwise. A caller that may not pull other/repo gets the same
	// 202 as for a blob that exists nowhere.
	{name: "mount without from", method: "POST", path: "/v2/team/app/blobs/uploads/?mount={private}", mount: "{private}",
		want: [16]int{201, 405, 401, 401, 401, 201, 405, 401, 401, 202, 202, 401, 401, 201, 401, 405}},
	{name: "mount without from of a missing blob", method: "POST", path: "/v2/team/app/blobs/uploads/?mount={missing}", mount: "{missing}",
		want: [16]int{202, 405, 401, 401, 401, 202, 405, 401, 401, 202, 202, 401, 401, 202, 401, 405}},
	{name: "referrers", method: "GET", path: "/v2/team/app/referrers/{manifest}",
		want: [16]int{200, 200, 401, 401, 401, 200, 200, 401, 200, 200, 200, 401, 401, 200, 401, 200}},
}

// codeOf is the OCI error code each refusal status is sent with.
var codeOf = map[int]string{401: "UNAUTHORIZED", 403: "DENIED", 405: "UNSUPPORTED", 429: "TOOMANYREQUESTS"}

// TestAuthorizationTable sends every route in every auth mode and checks
// the status, the OCI error code, the challenge of a 401, that a refused
// request changed nothing in storage, and that a mount answered 202 did
// not make the blob readable.
func TestAuthorizationTable(t *testing.T) {
	keys := newAuthzKeys(t)
	for _, rt := range authzRoutes {
		for i, mode := range authModes {
			t.Run(rt.name+"/"+mode.name, func(t *testing.T) {
				f := newAuthzFixture(t, keys, mode)
				want := rt.want[i]
				before := f.snapshot()
				res := f.do(mode, rt.method, f.fill(rt.path), f.fill(rt.body), rt.contentType)
				if res.status != want {
					t.Fatalf("%s %s: status %d, want %d; body %s", rt.method, rt.path, res.status, want, res.body)
				}
				if want >= 400 {
					if rt.method != "HEAD" {
						expectCode(t, res, codeOf[want])
					}
					if want == 401 && res.header.Get("WWW-Authenticate") == "" {
						t.Fatal("401 without a WWW-Authenticate challenge")
					}
					if after := f.snapshot(); after != before {
						t.Fatalf("refused request changed storage:\nbefore %s\nafter  %s", before, after)
					}
				}
				if rt.mount != "" && want == http.StatusAccepted {
					d := f.fill(rt.mount)
					if got := f.admin("HEAD", "/v2/"+ownRepo+"/blobs/"+d, "", ""); got.status != http.StatusNotFound {
						t.Fatalf("after a 202 mount, %s is readable in %s: HEAD %d", d, ownRepo, got.status)
					}
				}
			})
		}
	}
}

// TestMountWithoutFromDoesNotReadOtherRepositories plays mallory: with a
// token for mallory/app only, she mounts victim/private's blob by digest
// with and without from, then tries to read it. Nothing may be linked, and
// her answers must be the same as for a digest that exists nowhere.
func TestMountWithoutFromDoesNotReadOtherRepositories(t *testing.T) {
	keys := newAuthzKeys(t)
	mallory := authMode{name: "mallory", kind: "token", access: []accessClaim{repoClaim("mallory/app", "pull", "push")}}
	f := newAuthzFixture(t, keys, mallory)
	secret := "victim's private layer"
	d := digest.FromString(secret).String()
	f.admin("POST", "/v2/victim/private/blobs/uploads/?digest="+d, secret, "").mustBe(t, http.StatusCreated)
	missing := digest.FromString("exists nowhere").String()

	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"without from", "?mount=" + d, http.StatusAccepted},
		{"without from, missing blob", "?mount=" + missing, http.StatusAccepted},
		{"from victim", "?mount=" + d + "&from=victim/private", http.StatusUnauthorized},
		{"from victim, missing blob", "?mount=" + missing + "&from=victim/private", http.StatusUnauthorized},
		{"from herself", "?mount=" + d + "&from=mallory/app", http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.do(mallory, "POST", "/v2/mallory/app/blobs/uploads/"+tc.query, "", "")
			if res.status != tc.want {
				t.Fatalf("status %d, want %d; body %s", res.status, tc.want, res.body)
			}
			if got := f.do(mallory, "GET", "/v2/mallory/app/blobs/"+d, "", ""); got.status != http.StatusNotFound {
				t.Fatalf("mallory reads the victim's blob: GET %d %q", got.status, got.body)
			}
			if got := f.admin("HEAD", "/v2/mallory/app/blobs/"+d, "", ""); got.status != http.StatusNotFound {
				t.Fatalf("the victim's blob is linked in mallory/app: HEAD %d", got.status)
			}
		})
	}
}

// authzKeys are the test's token signer and htpasswd file, made once.
type authzKeys struct {
	signer   *ecdsa.PrivateKey
	jwks     string
	htpasswd string
}

func newAuthzKeys(t *testing.T) *authzKeys {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "authz", Algorithm: string(jose.ES256), Use: "sig"}}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	k := &authzKeys{signer: key, jwks: filepath.Join(dir, "jwks.json"), htpasswd: filepath.Join(dir, "htpasswd")}
	if err := os.WriteFile(k.jwks, b, 0o600); err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// mint signs a token for subject with access, as a token service would.
func (k *authzKeys) mint(t *testing.T, subject string, access []accessClaim) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "authz")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.signer}, opts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cl := struct {
		jwt.Claims
		Access []accessClaim `json:"access"`
	}{
		Claims: jwt.Claims{
			Issuer: authzIssuer, Subject: subject, Audience: jwt.Audience{authzSvc},
			Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			IssuedAt: jwt.NewNumericDate(now),
		},
		Access: access,
	}
	tok, err := jwt.Signed(s).Claims(cl).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// authzFixture is a fresh registry seeded through an open handler on the
// same storage, and the handler under test in front of it.
type authzFixture struct {
	t      *testing.T
	keys   *authzKeys
	d      driver.Driver
	open   http.Handler
	h      http.Handler
	values map[string]string
}

func newAuthzFixture(t *testing.T, keys *authzKeys, mode authMode) *authzFixture {
	t.Helper()
	ctx := context.Background()
	d, err := driver.Open(ctx, "inmemory", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := storage.New(d, storage.Options{DeleteEnabled: true}, nil)
	opts := registry.Options{ReadOnly: mode.readOnly}
	switch mode.kind {
	case "htpasswd":
		c, err := htpasswd.New(htpasswd.Options{Realm: "authz", Path: keys.htpasswd}, nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Authorize = c.Authorize
	case "token":
		c, err := token.New(token.Options{Realm: "https://auth.example/token", Service: authzSvc, Issuer: authzIssuer, JWKS: keys.jwks}, nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Authorize = c.Authorize
	}
	f := &authzFixture{t: t, keys: keys, d: d, open: registry.New(reg, registry.Options{}, nil), h: registry.New(reg, opts, nil)}
	f.seed()
	return f
}

// seed pushes an image to ownRepo, a private blob to otherRepo only, and
// opens an upload session in ownRepo.
func (f *authzFixture) seed() {
	t := f.t
	push := func(repo, content string) string {
		d := digest.FromString(content).String()
		f.admin("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, content, "").mustBe(t, http.StatusCreated)
		return d
	}
	config := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`
	cfg, layer := push(ownRepo, config), push(ownRepo, "layer of team/app")
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		cfg, len(config), layer, len("layer of team/app"))
	f.admin("PUT", "/v2/"+ownRepo+"/manifests/v1", manifest, "application/vnd.oci.image.manifest.v1+json").mustBe(t, http.StatusCreated)
	private := push(otherRepo, "private layer of other/repo")
	up := f.admin("POST", "/v2/"+ownRepo+"/blobs/uploads/", "", "")
	up.mustBe(t, http.StatusAccepted)
	f.values = map[string]string{
		"{manifest}":     digest.FromString(manifest).String(),
		"{manifestbody}": manifest,
		"{layer}":        layer,
		"{private}":      private,
		"{missing}":      digest.FromString("a blob nowhere").String(),
		"{upload}":       up.header.Get("Docker-Upload-UUID"),
		"{chunk}":        digest.FromString("x").String(),
	}
}

func (f *authzFixture) fill(s string) string {
	for k, v := range f.values {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

type authzResult struct {
	status int
	header http.Header
	body   string
}

func (r authzResult) mustBe(t *testing.T, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}

func expectCode(t *testing.T, r authzResult, code string) {
	t.Helper()
	var eb struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.body), &eb); err != nil || len(eb.Errors) == 0 {
		t.Fatalf("no OCI error body: %q (%v)", r.body, err)
	}
	if eb.Errors[0].Code != code {
		t.Fatalf("error code %s, want %s: %s", eb.Errors[0].Code, code, r.body)
	}
}

// admin sends a request to the open handler.
func (f *authzFixture) admin(method, path, body, contentType string) authzResult {
	return serve(f.t, f.open, newRequest(f.t, method, path, body, contentType))
}

// do sends a request to the handler under test with mode's credentials.
func (f *authzFixture) do(mode authMode, method, path, body, contentType string) authzResult {
	r := newRequest(f.t, method, path, body, contentType)
	switch {
	case mode.user != "":
		r.SetBasicAuth(mode.user, mode.pass)
	case mode.access != nil:
		r.Header.Set("Authorization", "Bearer "+f.keys.mint(f.t, "subject", mode.access))
	}
	return serve(f.t, f.h, r)
}

func newRequest(t *testing.T, method, path, body, contentType string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.ContentLength = int64(len(body))
	if body == "" {
		r.Body = http.NoBody
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func serve(t *testing.T, h http.Handler, r *http.Request) authzResult {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return authzResult{status: res.StatusCode, header: res.Header, body: string(b)}
}

// snapshot lists every file in storage with its size and modification
// time, so a test sees any write.
func (f *authzFixture) snapshot() string {
	var b bytes.Buffer
	err := driver.Walk(context.Background(), f.d, "/", func(fi driver.FileInfo) error {
		if !fi.IsDir {
			fmt.Fprintf(&b, "%s %d %d\n", fi.Path, fi.Size, fi.ModTime.UnixNano())
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return b.String()
}
