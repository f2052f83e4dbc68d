package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
)

// TestLetsEncryptObtainsCertificateFromACMEServer runs Pebble, a real
// ACME server, on loopback, and lets Berth obtain its certificate through
// the tls-alpn-01 challenge that Pebble checks against Berth's own
// listener.
func TestLetsEncryptObtainsCertificateFromACMEServer(t *testing.T) {
	testACME(t, false)
}

// TestLetsEncryptWithMutualTLS checks that a Berth requiring client
// certificates still gets its certificate from the ACME server, which
// shows none, and still refuses clients without one. (Pebble validates
// over TLS 1.3, where the server's refusal comes after the client has
// seen the certificate; the TLS 1.2 case is the unit test of
// acmeWithoutClientAuth in cmd/berth.)
func TestLetsEncryptWithMutualTLS(t *testing.T) {
	testACME(t, true)
}

func testACME(t *testing.T, mutual bool) {
	pebble := testenv.Tool(t, "pebble")
	dir := t.TempDir()
	// Pebble's own HTTPS listener, and what Berth trusts to reach it.
	caFile := filepath.Join(dir, "ca.crt")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeTestCerts(t, caFile, certFile, keyFile)

	const acmeHost = "registry.berth.test"
	// Five servers start together: distinct ports, or two may get the
	// same one (Pebble's management and the DNS server's once did).
	addrs := testenv.FreeAddrs(t, 5)
	berthAddr := addrs[0]
	_, berthPort, _ := splitHostPort(t, berthAddr)
	acmeAddr, mgmtAddr := addrs[1], addrs[2]
	conf := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`{"pebble": {
  "listenAddress": %q, "managementListenAddress": %q,
  "certificate": %q, "privateKey": %q,
  "httpPort": 1, "tlsPort": %s,
  "ocspResponderURL": "", "externalAccountBindingRequired": false,
  "profiles": {"default": {"description": "test", "validityPeriod": 86400}}
}}`, acmeAddr, mgmtAddr, certFile, keyFile, berthPort)), 0o600); err != nil {
		t.Fatal(err)
	}
	// A DNS server answering 127.0.0.1 for every name, so Pebble's
	// validation reaches Berth under a real-looking host name (autocert
	// refuses single-label names such as localhost).
	dnsAddr, dnsMgmt := addrs[3], addrs[4]
	testenv.StartProcess(t, testenv.Tool(t, "pebble-challtestsrv"), []string{
		"-dnsserver", dnsAddr, "-management", dnsMgmt, "-defaultIPv6", "",
		"-doh", "", "-http01", "", "-https01", "", "-tlsalpn01", "",
	}, nil)
	testenv.WaitTCP(t, dnsMgmt, 30*time.Second)
	p := testenv.StartProcess(t, pebble, []string{"-config", conf, "-strict", "-dnsserver", dnsAddr},
		[]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"})
	testenv.WaitTCP(t, acmeAddr, 30*time.Second)

	cfg := filesystemConfig(filepath.Join(dir, "data")) + fmt.Sprintf(`  tls:
    letsencrypt:
      cachefile: %s
      email: ops@example.com
      hosts: [%s]
      directoryurl: https://%s/dir
`, filepath.Join(dir, "acme-cache"), acmeHost, acmeAddr)
	var clientCerts []tls.Certificate
	if mutual {
		// Clients present a certificate from the same test CA.
		cfg += fmt.Sprintf("    clientcas: [%s]\n", caFile)
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		clientCerts = []tls.Certificate{cert}
	}
	// Berth must listen where Pebble's tlsPort points, so it is started
	// here rather than by StartBerth, which picks its own port.
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	b := testenv.StartProcess(t, testenv.BuildBerth(t), []string{"serve", cfgFile},
		[]string{"REGISTRY_HTTP_ADDR=" + berthAddr, "SSL_CERT_FILE=" + caFile})
	testenv.WaitTCP(t, berthAddr, 30*time.Second)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pebbleRoot(t, caFile, mgmtAddr))
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: acmeHost, Certificates: clientCerts},
	}}
	resp, err := client.Get("https://" + berthAddr + "/v2/")
	if err != nil {
		t.Fatalf("GET /v2/ with a certificate from the ACME server: %v\nberth:\n%s\npebble:\n%s", err, b.Log(), p.Log())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.TLS.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != acmeHost {
		t.Fatalf("certificate names %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "acme-cache", acmeHost)); err != nil {
		t.Fatalf("certificate not cached: %v", err)
	}
	if mutual {
		anonymous := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: acmeHost},
		}}
		if resp, err := anonymous.Get("https://" + berthAddr + "/v2/"); err == nil {
			resp.Body.Close()
			t.Fatalf("a client without certificate was served: %d", resp.StatusCode)
		}
	}
}

// pebbleRoot fetches the root Pebble issues under from its management
// API.
func pebbleRoot(t *testing.T, caFile, mgmtAddr string) []byte {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var resp *http.Response
	for range 50 {
		if resp, err = client.Get("https://" + mgmtAddr + "/roots/0"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	root, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: %d %v", resp.StatusCode, err)
	}
	return root
}

func splitHostPort(t *testing.T, addr string) (host, port string, err error) {
	t.Helper()
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port, nil
}
