package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
// else; tokens are ES256 with the signing certificate in x5c.
type tokenService struct {
	key    *ecdsa.PrivateKey
	cert   []byte
	bundle string
	srv    *httptest.Server
}

func startTokenService(t *testing.T) *tokenService {
	t.Helper()
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
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
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

func TestDockerLoginPushPullOverTLSWithTokenAuth(t *testing.T) {
	docker := testenv.Docker(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("DOCKER_BUILDKIT", "0")
	ts := startTokenService(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeTestCerts(t, caFile, certFile, keyFile)
	cfg := filesystemConfig(filepath.Join(dir, "data")) + fmt.Sprintf(`  tls:
    certificate: %s
    key: %s
auth:
  token:
    realm: %s/token
    service: berth-e2e
    issuer: e2e-issuer
    rootcertbundle: %s
`, certFile, keyFile, ts.srv.URL, ts.bundle)
	addr := testenv.StartBerth(t, cfg)
	trustForDocker(t, addr, caFile)
	image := addr + "/team/tokened:1.0"
	outside := addr + "/other/app:1.0"
	t.Cleanup(func() { _ = testenv.RunQuiet(docker, "rmi", "-f", image, outside) })

	testenv.Run(t, docker, "build", "-t", image, buildImageContext(t))
	testenv.Run(t, docker, "tag", image, outside)
	if out, err := dockerLogin(docker, addr, "alice", "wrong"); err == nil {
		t.Fatalf("login with a wrong password succeeded:\n%s", out)
	}
	if out, err := dockerLogin(docker, addr, "alice", "s3cret"); err != nil {
		t.Fatalf("docker login: %v\n%s", err, out)
	}
	out := testenv.Run(t, docker, "push", image)
	if !pushDigest.MatchString(out) {
		t.Fatalf("docker push printed no digest:\n%s", out)
	}
	testenv.Run(t, docker, "rmi", image)
	testenv.Run(t, docker, "pull", image)
	// The token service grants nothing outside team/.
	if out, err := exec.Command(docker, "push", outside).CombinedOutput(); err == nil {
		t.Fatalf("push outside the granted repositories succeeded:\n%s", out)
	}
}
