package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/berth-registry/berth/config"
)

// tlsVersions are the values of http.tls.minimumtls.
var tlsVersions = map[string]uint16{
	"tls1.0": tls.VersionTLS10,
	"tls1.1": tls.VersionTLS11,
	"tls1.2": tls.VersionTLS12,
	"tls1.3": tls.VersionTLS13,
}

// clientAuthTypes are the values of http.tls.clientauth, as Distribution
// names them.
var clientAuthTypes = map[string]tls.ClientAuthType{
	"request-client-cert":            tls.RequestClientCert,
	"require-any-client-cert":        tls.RequireAnyClientCert,
	"verify-client-cert-if-given":    tls.VerifyClientCertIfGiven,
	"require-and-verify-client-cert": tls.RequireAndVerifyClientCert,
}

// serverTLS builds the TLS configuration from http.tls: a certificate and
// key re-read when they change, or one obtained with ACME; client
// certificates checked against clientcas; the minimum version and cipher
// suites; HTTP/2 unless http.http2.disabled.
func serverTLS(h config.HTTP, log *slog.Logger) (*tls.Config, error) {
	t := h.TLS
	cfg := &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	if h.HTTP2.Disabled {
		cfg.NextProtos = []string{"http/1.1"}
	}
	minimum := t.MinimumTLS
	if minimum == "" {
		minimum = "tls1.2"
	}
	v, ok := tlsVersions[minimum]
	if !ok {
		return nil, fmt.Errorf("http.tls.minimumtls: %q is not one of tls1.0, tls1.1, tls1.2, tls1.3", t.MinimumTLS)
	}
	cfg.MinVersion = v
	suites, err := cipherSuites(t.CipherSuites)
	if err != nil {
		return nil, err
	}
	cfg.CipherSuites = suites
	if len(suites) > 0 && !h.HTTP2.Disabled && v < tls.VersionTLS13 &&
		!slices.Contains(suites, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) &&
		!slices.Contains(suites, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256) {
		// net/http would refuse to serve at all (RFC 7540, 9.2.2).
		return nil, errors.New("http.tls.ciphersuites: HTTP/2 needs TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (or set http.http2.disabled)")
	}
	if len(suites) > 0 && v == tls.VersionTLS13 {
		log.Warn("http.tls.ciphersuites has no effect with minimumtls tls1.3: Go picks TLS 1.3 suites itself")
	}
	if len(t.ClientCAs) > 0 {
		pool, err := certPool(t.ClientCAs)
		if err != nil {
			return nil, fmt.Errorf("http.tls.clientcas: %w", err)
		}
		cfg.ClientCAs = pool
		mode := t.ClientAuth
		if mode == "" {
			mode = "require-and-verify-client-cert"
		}
		ca, ok := clientAuthTypes[mode]
		if !ok {
			return nil, fmt.Errorf("http.tls.clientauth: %q is not one of request-client-cert, require-any-client-cert, verify-client-cert-if-given, require-and-verify-client-cert", t.ClientAuth)
		}
		cfg.ClientAuth = ca
	}
	switch {
	case t.Certificate != "" && t.LetsEncrypt.CacheFile != "":
		return nil, errors.New("http.tls: set either certificate or letsencrypt, not both")
	case t.Certificate != "":
		if t.Key == "" {
			return nil, errors.New("http.tls.key is required with http.tls.certificate")
		}
		kp, err := newKeyPair(t.Certificate, t.Key, log)
		if err != nil {
			return nil, err
		}
		cfg.GetCertificate = kp.get
	case t.LetsEncrypt.CacheFile != "":
		le := t.LetsEncrypt
		m := &autocert.Manager{
			Prompt: autocert.AcceptTOS,
			Cache:  autocert.DirCache(le.CacheFile),
			Email:  le.Email,
		}
		if len(le.Hosts) > 0 {
			m.HostPolicy = autocert.HostWhitelist(le.Hosts...)
		}
		if le.DirectoryURL != "" {
			m.Client = &acme.Client{DirectoryURL: le.DirectoryURL}
		}
		cfg.GetCertificate = m.GetCertificate
		// tls-alpn-01 challenges are answered on the same listener.
		cfg.NextProtos = append(cfg.NextProtos, acme.ALPNProto)
		if cfg.ClientAuth != tls.NoClientCert {
			cfg.GetConfigForClient = acmeWithoutClientAuth(cfg)
		}
	default:
		return nil, errors.New("http.tls: certificate or letsencrypt.cachefile is required")
	}
	return cfg, nil
}

// acmeWithoutClientAuth lets the ACME server's tls-alpn-01 validation
// through mutual TLS: it presents no client certificate, so a handshake
// that offers only the acme-tls/1 protocol is served without asking for
// one. Such a handshake gets the challenge certificate and nothing else:
// net/http closes a connection whose negotiated protocol it has no
// handler for, so no request is ever served over it.
func acmeWithoutClientAuth(cfg *tls.Config) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	acmeOnly := cfg.Clone()
	acmeOnly.ClientAuth = tls.NoClientCert
	acmeOnly.ClientCAs = nil
	acmeOnly.NextProtos = []string{acme.ALPNProto}
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
			return acmeOnly, nil
		}
		return nil, nil // the configuration as it is
	}
}

// cipherSuites maps Go's suite names (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
// to their IDs. Suites Go deems insecure are refused.
func cipherSuites(names []string) ([]uint16, error) {
	var ids []uint16
	for _, n := range names {
		i := slices.IndexFunc(tls.CipherSuites(), func(s *tls.CipherSuite) bool { return s.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("http.tls.ciphersuites: %q is not a secure cipher suite known to Go", n)
		}
		ids = append(ids, tls.CipherSuites()[i].ID)
	}
	return ids, nil
}

// keyPair serves a certificate and key from files, re-read when either
// file's modification time changes, so a renewed certificate is picked
// up without a restart.
type keyPair struct {
	certPath, keyPath string
	log               *slog.Logger

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
}

func newKeyPair(certPath, keyPath string, log *slog.Logger) (*keyPair, error) {
	kp := &keyPair{certPath: certPath, keyPath: keyPath, log: log}
	if err := kp.reload(); err != nil {
		return nil, fmt.Errorf("http.tls: %w", err)
	}
	return kp, nil
}

// reload reads both files when either changed since the last read.
func (kp *keyPair) reload() error {
	cfi, err := os.Stat(kp.certPath)
	if err != nil {
		return err
	}
	kfi, err := os.Stat(kp.keyPath)
	if err != nil {
		return err
	}
	if kp.cert != nil && cfi.ModTime().Equal(kp.certMod) && kfi.ModTime().Equal(kp.keyMod) {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(kp.certPath, kp.keyPath)
	if err != nil {
		return err
	}
	reloaded := kp.cert != nil
	kp.cert, kp.certMod, kp.keyMod = &cert, cfi.ModTime(), kfi.ModTime()
	if reloaded {
		kp.log.Info("tls certificate reloaded", "certificate", kp.certPath)
	}
	return nil
}

// get is tls.Config.GetCertificate. A certificate and key caught half
// way through a renewal (mismatched, unreadable) do not break serving:
// the previous pair stays in use until both files agree.
func (kp *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if err := kp.reload(); err != nil {
		kp.log.Warn("tls certificate reload failed, keeping the previous one", "certificate", kp.certPath, "error", err)
	}
	return kp.cert, nil
}

// certPool reads the PEM certificates of files into one pool.
func certPool(files []string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no PEM certificate", path)
		}
	}
	return pool, nil
}
