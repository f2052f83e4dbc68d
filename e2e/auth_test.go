package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/internal/testenv"
)

// tlsAuthBerth starts Berth over TLS with htpasswd auth (user alice,
// password s3cret) and returns its address and the CA's PEM file.
func tlsAuthBerth(t *testing.T) (addr, caFile string) {
	t.Helper()
	dir := t.TempDir()
	caFile = filepath.Join(dir, "ca.crt")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeTestCerts(t, caFile, certFile, keyFile)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filesystemConfig(filepath.Join(dir, "data")) + fmt.Sprintf(`  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: berth-e2e
    path: %s
`, certFile, keyFile, htpasswd)
	return testenv.StartBerth(t, cfg), caFile
}

// writeTestCerts writes a CA and a server certificate for 127.0.0.1 and
// localhost signed by it.
func writeTestCerts(t *testing.T, caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
		// Client auth too, so mutual TLS tests can present it.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		// A host name too: some clients (crane) refuse a token realm on
		// an IP literal of a private or loopback range.
		DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	for path, blk := range map[string]*pem.Block{
		caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: kder},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// trustForDocker makes dockerd trust caFile for addr, as an operator
// would, until the test ends.
func trustForDocker(t *testing.T, addr, caFile string) {
	t.Helper()
	dir := filepath.Join("/etc/docker/certs.d", addr)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("cannot write %s for docker to trust the test CA: %v", dir, err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDockerLoginPushPullOverTLSWithHtpasswd(t *testing.T) {
	docker := testenv.Docker(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("DOCKER_BUILDKIT", "0")
	addr, caFile := tlsAuthBerth(t)
	trustForDocker(t, addr, caFile)
	image := addr + "/team/secure:1.0"
	t.Cleanup(func() { _ = testenv.RunQuiet(docker, "rmi", "-f", image) })

	testenv.Run(t, docker, "build", "-t", image, buildImageContext(t))
	if out, err := exec.Command(docker, "push", image).CombinedOutput(); err == nil {
		t.Fatalf("push without login succeeded:\n%s", out)
	}
	dockerLoginPushPull(t, docker, addr, image)
	testenv.Run(t, docker, "logout", addr)
	testenv.Run(t, docker, "rmi", image)
	if out, err := exec.Command(docker, "pull", image).CombinedOutput(); err == nil {
		t.Fatalf("pull after logout succeeded:\n%s", out)
	}
}

// dockerLoginPushPull checks that docker login refuses alice with a wrong
// password and accepts her with the right one, then pushes image, removes
// it and pulls it back.
func dockerLoginPushPull(t *testing.T, docker, addr, image string) {
	t.Helper()
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
}

// tlsClientEnv gives crane and skopeo a private home and trust in the
// test CA, and returns the directory skopeo reads CAs from.
func tlsClientEnv(t *testing.T, caFile string) (certDir string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
	// Go's TLS stack on Linux reads extra roots from SSL_CERT_FILE;
	// skopeo reads the CAs to trust from *.crt files in --*-cert-dir.
	t.Setenv("SSL_CERT_FILE", caFile)
	return filepath.Dir(caFile)
}

func dockerLogin(docker, addr, user, pass string) ([]byte, error) {
	cmd := exec.Command(docker, "login", "--username", user, "--password-stdin", addr)
	cmd.Stdin = strings.NewReader(pass)
	return cmd.CombinedOutput()
}

func TestCraneLoginPushPullOverTLSWithHtpasswd(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	addr, caFile := tlsAuthBerth(t)
	tlsClientEnv(t, caFile)

	layer := filepath.Join(t.TempDir(), "layer.tar")
	writeTar(t, layer, "hello.txt", "hello from crane\n")
	image := addr + "/team/crane:1.0"
	if out, err := exec.Command(crane, "append", "-f", layer, "-t", image).CombinedOutput(); err == nil {
		t.Fatalf("push without credentials succeeded:\n%s", out)
	}
	// crane auth login only stores the credentials; the push checks them.
	testenv.Run(t, crane, "auth", "login", addr, "-u", "alice", "-p", "nope")
	if out, err := exec.Command(crane, "append", "-f", layer, "-t", image).CombinedOutput(); err == nil {
		t.Fatalf("push with a wrong password succeeded:\n%s", out)
	}
	testenv.Run(t, crane, "auth", "login", addr, "-u", "alice", "-p", "s3cret")
	pushed := strings.TrimSpace(testenv.Run(t, crane, "append", "-f", layer, "-t", image))
	if !strings.Contains(pushed, "@sha256:") {
		t.Fatalf("crane append printed %q", pushed)
	}
	got := testenv.Run(t, crane, "export", image, "-")
	if !strings.Contains(got, "hello from crane") {
		t.Fatal("pulled image does not hold the pushed file")
	}
	if tags := testenv.Run(t, crane, "ls", addr+"/team/crane"); strings.TrimSpace(tags) != "1.0" {
		t.Fatalf("tags %q", tags)
	}
}

func writeTar(t *testing.T, path, name, content string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSkopeoCopyWithCredsOverTLSWithHtpasswd(t *testing.T) {
	skopeo := testenv.Tool(t, "skopeo")
	crane := testenv.Tool(t, "crane")
	addr, caFile := tlsAuthBerth(t)
	certDir := tlsClientEnv(t, caFile)

	layer := filepath.Join(t.TempDir(), "layer.tar")
	writeTar(t, layer, "hello.txt", "hello from skopeo\n")
	src, dst := addr+"/team/src:1.0", addr+"/team/dst:1.0"
	testenv.Run(t, crane, "auth", "login", addr, "-u", "alice", "-p", "s3cret")
	testenv.Run(t, crane, "append", "-f", layer, "-t", src)

	copyArgs := func(creds string) []string {
		return []string{"copy", "--src-cert-dir", certDir, "--dest-cert-dir", certDir,
			"--src-creds", creds, "--dest-creds", creds, "docker://" + src, "docker://" + dst}
	}
	if out, err := exec.Command(skopeo, copyArgs("alice:wrong")...).CombinedOutput(); err == nil {
		t.Fatalf("skopeo copy with a wrong password succeeded:\n%s", out)
	}
	testenv.Run(t, skopeo, copyArgs("alice:s3cret")...)
	out := testenv.Run(t, skopeo, "inspect", "--cert-dir", certDir, "--creds", "alice:s3cret", "docker://"+dst)
	if !strings.Contains(out, `"Layers"`) {
		t.Fatalf("skopeo inspect of the copy:\n%s", out)
	}
}
