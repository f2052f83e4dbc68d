package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/config"
)

// testCA issues certificates for TLS tests.
type testCA struct {
	t    *testing.T
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{t: t, key: key, cert: cert, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key; server certificates are for
// 127.0.0.1.
func (ca *testCA) issue(serial int64, server bool) (certPEM, keyPEM []byte) {
	ca.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "berth test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsFiles writes a server certificate from ca into dir and returns an
// http.tls section naming them.
func tlsFiles(t *testing.T, ca *testCA, dir string, serial int64) config.TLS {
	c, k := ca.issue(serial, true)
	tc := config.TLS{Certificate: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	write(t, tc.Certificate, c)
	write(t, tc.Key, k)
	return tc
}

// serveTLS serves a trivial handler with the configuration built from h
// and returns its address.
func serveTLS(t *testing.T, h config.HTTP) string {
	t.Helper()
	cfg, err := serverTLS(h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: cfg, ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			w.Header().Set("X-Client", r.TLS.PeerCertificates[0].SerialNumber.String())
		}
	})}
	go func() { _ = srv.Serve(tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func dial(addr string, cfg *tls.Config) (*tls.ConnectionState, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// TLS 1.3 reports a refused client certificate only on the first read.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
		return nil, err
	}
	st := c.ConnectionState()
	return &st, nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestTLSReloadsChangedCertificate(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir := t.TempDir()
	tc := tlsFiles(t, ca, dir, 100)
	addr := serveTLS(t, config.HTTP{TLS: tc})
	client := &tls.Config{RootCAs: ca.pool()}
	st, err := dial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.PeerCertificates[0].SerialNumber.Int64(); got != 100 {
		t.Fatalf("serial %d, want 100", got)
	}
	tlsFiles(t, ca, dir, 200)
	later := time.Now().Add(time.Minute)
	for _, p := range []string{tc.Certificate, tc.Key} {
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	st, err = dial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.PeerCertificates[0].SerialNumber.Int64(); got != 200 {
		t.Fatalf("serial %d after renewal, want 200", got)
	}
	// A key that no longer matches keeps the last good pair in use.
	_, otherKey := ca.issue(300, true)
	write(t, tc.Key, otherKey)
	later = later.Add(time.Minute)
	if err := os.Chtimes(tc.Key, later, later); err != nil {
		t.Fatal(err)
	}
	st, err = dial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.PeerCertificates[0].SerialNumber.Int64(); got != 200 {
		t.Fatalf("serial %d with a mismatched key, want 200", got)
	}
}

func TestTLSClientCertificatesRequiredWithClientCAs(t *testing.T) {
	ca := newTestCA(t, "server ca")
	clientCA := newTestCA(t, "client ca")
	otherCA := newTestCA(t, "other ca")
	dir := t.TempDir()
	tc := tlsFiles(t, ca, dir, 1)
	tc.ClientCAs = []string{filepath.Join(dir, "clients.pem")}
	write(t, tc.ClientCAs[0], clientCA.pem)
	addr := serveTLS(t, config.HTTP{TLS: tc})

	pair := func(c *testCA) []tls.Certificate {
		cp, kp := c.issue(42, false)
		cert, err := tls.X509KeyPair(cp, kp)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{cert}
	}
	tests := []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"no client certificate", nil, false},
		{"certificate from another CA", pair(otherCA), false},
		{"certificate from a client CA", pair(clientCA), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), Certificates: tc.certs}}}
			resp, err := client.Get("https://" + addr + "/")
			if !tc.ok {
				if err == nil {
					resp.Body.Close()
					t.Fatal("connection accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Header.Get("X-Client") != "42" {
				t.Fatal("client certificate not seen by the handler")
			}
		})
	}
}

func TestTLSMinimumVersionAndCipherSuites(t *testing.T) {
	ca := newTestCA(t, "ca")
	tc := tlsFiles(t, ca, t.TempDir(), 1)
	tc.MinimumTLS = "tls1.3"
	addr := serveTLS(t, config.HTTP{TLS: tc})
	if _, err := dial(addr, &tls.Config{RootCAs: ca.pool(), MaxVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("TLS 1.2 client accepted with minimumtls tls1.3")
	}
	if st, err := dial(addr, &tls.Config{RootCAs: ca.pool()}); err != nil || st.Version != tls.VersionTLS13 {
		t.Fatalf("TLS 1.3 client: %v", err)
	}

	tc.MinimumTLS = ""
	tc.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
	addr = serveTLS(t, config.HTTP{TLS: tc})
	tls12 := func(suite uint16) *tls.Config {
		return &tls.Config{RootCAs: ca.pool(), MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}
	}
	if _, err := dial(addr, tls12(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)); err == nil {
		t.Fatal("suite outside ciphersuites accepted")
	}
	st, err := dial(addr, tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384))
	if err != nil || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Fatalf("listed suite: %v", err)
	}
	// TLS 1.2 is the default minimum.
	if _, err := dial(addr, &tls.Config{RootCAs: ca.pool(), MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 client accepted by default")
	}
}

func TestTLSServesHTTP2(t *testing.T) {
	ca := newTestCA(t, "ca")
	tc := tlsFiles(t, ca, t.TempDir(), 1)
	for _, disabled := range []bool{false, true} {
		addr := serveTLS(t, config.HTTP{TLS: tc, HTTP2: config.HTTP2{Disabled: disabled}})
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}, ForceAttemptHTTP2: true}}
		resp, err := client.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 2, true: 1}[disabled]; resp.ProtoMajor != want {
			t.Errorf("http2.disabled=%v: HTTP/%d, want HTTP/%d", disabled, resp.ProtoMajor, want)
		}
	}
}

func TestServerTLSRefusesBadSettings(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir := t.TempDir()
	good := tlsFiles(t, ca, dir, 1)
	tests := map[string]func(*config.TLS){
		"unknown minimumtls":   func(c *config.TLS) { c.MinimumTLS = "tls9" },
		"unknown cipher":       func(c *config.TLS) { c.CipherSuites = []string{"TLS_NOPE"} },
		"no HTTP/2 cipher":     func(c *config.TLS) { c.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"} },
		"insecure cipher":      func(c *config.TLS) { c.CipherSuites = []string{"TLS_RSA_WITH_RC4_128_SHA"} },
		"missing key":          func(c *config.TLS) { c.Key = filepath.Join(dir, "none.pem") },
		"unknown clientauth":   func(c *config.TLS) { c.ClientCAs, c.ClientAuth = []string{good.Certificate}, "maybe" },
		"clientcas not PEM":    func(c *config.TLS) { c.ClientCAs = []string{filepath.Join(dir, "junk")} },
		"certificate and acme": func(c *config.TLS) { c.LetsEncrypt.CacheFile = filepath.Join(dir, "acme") },
	}
	write(t, filepath.Join(dir, "junk"), []byte("junk"))
	for name, edit := range tests {
		c := good
		edit(&c)
		_, err := serverTLS(config.HTTP{TLS: c}, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "http.tls") {
			t.Errorf("%s: err %v, want an http.tls error", name, err)
		}
	}
}

func TestACMEValidationPassesMutualTLSOnlyForTheChallengeProtocol(t *testing.T) {
	ca := newTestCA(t, "clients")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "clients.pem")
	write(t, caFile, ca.pem)
	h := config.HTTP{TLS: config.TLS{ClientCAs: []string{caFile}}}
	h.TLS.LetsEncrypt.CacheFile = filepath.Join(dir, "acme")
	h.TLS.LetsEncrypt.Hosts = []string{"registry.example.com"}
	cfg, err := serverTLS(h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.GetConfigForClient == nil {
		t.Fatalf("client auth %v, GetConfigForClient set %v", cfg.ClientAuth, cfg.GetConfigForClient != nil)
	}
	tests := []struct {
		protos     []string
		clientAuth tls.ClientAuthType
	}{
		{[]string{"acme-tls/1"}, tls.NoClientCert},
		{[]string{"h2", "http/1.1"}, tls.RequireAndVerifyClientCert},
		{[]string{"acme-tls/1", "http/1.1"}, tls.RequireAndVerifyClientCert},
		{nil, tls.RequireAndVerifyClientCert},
	}
	for _, tc := range tests {
		got, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{SupportedProtos: tc.protos})
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			got = cfg
		}
		if got.ClientAuth != tc.clientAuth {
			t.Errorf("protocols %v: client auth %v, want %v", tc.protos, got.ClientAuth, tc.clientAuth)
		}
		if got.ClientAuth == tls.NoClientCert && (len(got.NextProtos) != 1 || got.NextProtos[0] != "acme-tls/1") {
			t.Errorf("protocols %v: a handshake without client certificate may negotiate %v", tc.protos, got.NextProtos)
		}
	}
}
