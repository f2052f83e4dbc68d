package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-registry/berth/internal/testenv"
)

// tokenService is a minimal Docker token service: alice (password s3cret)
// gets every scope she asks for on repositories under team/, and nothing
// else; tokens are ES256 with the signing certificate in x5c. It serves
// HTTPS with the given certificate, as clients refuse a plain-HTTP realm
// for a registry they reach over TLS.
type tokenService struct {
	key    *ecdsa.PrivateKey
	cert   []byte
	bundle string
	srv    *httptest.Server
}

func startTokenService(t *testing.T, certFile, keyFile string) *tokenService {
	t.Helper()
	serving, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "e2e token signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenService{key: key, cert: der, bundle: filepath.Join(t.TempDir(), "token-ca.pem")}
	if err := os.WriteFile(ts.bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.srv = httptest.NewUnstartedServer(http.HandlerFunc(ts.serve))
	ts.srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving}}
	ts.srv.StartTLS()
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenService) serve(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != "alice" || pass != "s3cret" {
		http.Error(w, `{"details":"bad credentials"}`, http.StatusUnauthorized)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var granted []access
	for _, sc := range r.URL.Query()["scope"] {
		for _, one := range strings.Fields(sc) {
			i, j := strings.Index(one, ":"), strings.LastIndex(one, ":")
			if i < 0 || i == j || one[:i] != "repository" || !strings.HasPrefix(one[i+1:j], "team/") {
				continue
			}
			granted = append(granted, access{Type: "repository", Name: one[i+1 : j], Actions: strings.Split(one[j+1:], ",")})
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ts.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(ts.cert)}))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: "e2e-issuer", Subject: user, Audience: jwt.Audience{r.URL.Query().Get("service")},
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		IssuedAt: jwt.NewNumericDate(now),
	}).Claims(map[string]any{"access": granted}).Serialize()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
}

// tokenBerth starts a token service and Berth over TLS with token auth
// trusting it, both with certificates for 127.0.0.1 from one test CA,
// and returns Berth's address and the CA's PEM file.
func tokenBerth(t *testing.T) (addr, caFile string) {
	t.Helper()
	dir := t.TempDir()
	caFile = filepath.Join(dir, "ca.crt")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeTestCerts(t, caFile, certFile, keyFile)
	ts := startTokenService(t, certFile, keyFile)
	cfg := filesystemConfig(filepath.Join(dir, "data")) + fmt.Sprintf(`  tls:
    certificate: %s
    key: %s
auth:
  token:
    realm: https://localhost:%s/token
    service: berth-e2e
    issuer: e2e-issuer
    rootcertbundle: %s
`, certFile, keyFile, ts.srv.URL[strings.LastIndex(ts.srv.URL, ":")+1:], ts.bundle)
	return testenv.StartBerth(t, cfg), caFile
}

func TestDockerLoginPushPullOverTLSWithTokenAuth(t *testing.T) {
	docker := testenv.Docker(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("DOCKER_BUILDKIT", "0")
	addr, caFile := tokenBerth(t)
	trustForDocker(t, addr, caFile)
	image := addr + "/team/tokened:1.0"
	outside := addr + "/other/app:1.0"
	t.Cleanup(func() { _ = testenv.RunQuiet(docker, "rmi", "-f", image, outside) })

	testenv.Run(t, docker, "build", "-t", image, buildImageContext(t))
	testenv.Run(t, docker, "tag", image, outside)
	dockerLoginPushPull(t, docker, addr, image)
	// The token service grants nothing outside team/.
	if out, err := exec.Command(docker, "push", outside).CombinedOutput(); err == nil {
		t.Fatalf("push outside the granted repositories succeeded:\n%s", out)
	}
}

func TestCraneAndSkopeoWithCredsOverTLSWithTokenAuth(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	skopeo := testenv.Tool(t, "skopeo")
	addr, caFile := tokenBerth(t)
	certDir := tlsClientEnv(t, caFile)

	layer := filepath.Join(t.TempDir(), "layer.tar")
	writeTar(t, layer, "hello.txt", "hello through a token\n")
	src, dst := addr+"/team/src:1.0", addr+"/team/dst:1.0"
	if out, err := exec.Command(crane, "append", "-f", layer, "-t", src).CombinedOutput(); err == nil {
		t.Fatalf("push without credentials succeeded:\n%s", out)
	}
	testenv.Run(t, crane, "auth", "login", addr, "-u", "alice", "-p", "wrong")
	if out, err := exec.Command(crane, "append", "-f", layer, "-t", src).CombinedOutput(); err == nil {
		t.Fatalf("push with a wrong password succeeded:\n%s", out)
	}
	testenv.Run(t, crane, "auth", "login", addr, "-u", "alice", "-p", "s3cret")
	testenv.Run(t, crane, "append", "-f", layer, "-t", src)
	if got := testenv.Run(t, crane, "export", src, "-"); !strings.Contains(got, "hello through a token") {
		t.Fatal("pulled image does not hold the pushed file")
	}

	copyArgs := func(creds, to string) []string {
		return []string{"copy", "--src-cert-dir", certDir, "--dest-cert-dir", certDir,
			"--src-creds", creds, "--dest-creds", creds, "docker://" + src, "docker://" + to}
	}
	if out, err := exec.Command(skopeo, copyArgs("alice:wrong", dst)...).CombinedOutput(); err == nil {
		t.Fatalf("skopeo copy with a wrong password succeeded:\n%s", out)
	}
	// The token service grants nothing outside team/.
	if out, err := exec.Command(skopeo, copyArgs("alice:s3cret", addr+"/other/dst:1.0")...).CombinedOutput(); err == nil {
		t.Fatalf("skopeo copy outside the granted repositories succeeded:\n%s", out)
	}
	testenv.Run(t, skopeo, copyArgs("alice:s3cret", dst)...)
	out := testenv.Run(t, skopeo, "inspect", "--cert-dir", certDir, "--creds", "alice:s3cret", "docker://"+dst)
	if !strings.Contains(out, `"Layers"`) {
		t.Fatalf("skopeo inspect of the copy:\n%s", out)
	}
}
