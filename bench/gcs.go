package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// With -backend gcs each server gets a fake-gcs-server of its own, behind
// the run's shaped link like MinIO with -backend s3.
//
// Berth's gcs driver takes the emulator's address (endpoint). CNCF
// Distribution's reads and small writes go through the Go client, which
// honours STORAGE_EMULATOR_HOST, but it starts every resumable upload with
// a POST to https://www.googleapis.com under OAuth2 credentials from
// Application Default Credentials. So Distribution also gets, in its
// environment: a service account key whose token_uri is a token endpoint
// here, and an HTTPS proxy that answers CONNECT www.googleapis.com:443
// with a TLS server of a throwaway CA (SSL_CERT_FILE) that passes the
// request on to the same shaped link. The chunks then go to the session
// URI fake-gcs-server returns, which names the shaped link directly.

const gcsBucket = "registry"

// skipConcurrentPushes keeps S4 off fake-gcs-server, which holds every
// object in memory: eight 1 GiB uploads, their components and the
// composed blobs would be tens of GiB on a machine other work shares.
func skipConcurrentPushes(h *harness) string {
	if h.backend == "gcs" {
		return "fake-gcs-server keeps objects in memory: 8 concurrent 1 GiB pushes would not fit beside the other work"
	}
	return ""
}

// newGCSStorage starts a fake-gcs-server in dir with an empty bucket,
// behind the shaped link unless WAN=off, and what Distribution needs to
// reach it.
func (h *harness) newGCSStorage(ctx context.Context, dir string) (*storageRoot, error) {
	direct, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// Upload session URIs name -external-url: the address clients use, the
	// proxy's when the link is shaped.
	public, unshape := direct, func() {}
	if h.wan != nil {
		if public, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	f, err := startFakeGCS(ctx, h.fakeGCS, dir, direct, public)
	if err != nil {
		return nil, err
	}
	if h.wan != nil {
		if unshape, err = h.wan.shapeLinkAt(ctx, filepath.Base(dir), public, direct); err != nil {
			f.stop()
			return nil, err
		}
	}
	g, err := startGoogleFront(dir, "http://"+public)
	if err != nil {
		unshape()
		f.stop()
		return nil, err
	}
	return &storageRoot{
		yaml: fmt.Sprintf(`  gcs:
    bucket: %s
    rootdirectory: /
    endpoint: http://%s`, gcsBucket, public),
		env:     append(g.env, "STORAGE_EMULATOR_HOST=http://"+public),
		cleanup: func() { g.close(); unshape(); f.stop() },
		put:     f.put,
		exists:  f.exists,
	}, nil
}

type fakeGCS struct {
	*proc
	endpoint string // direct, unshaped
	hc       *http.Client
}

func startFakeGCS(ctx context.Context, bin, dir, addr, public string) (*fakeGCS, error) {
	data := filepath.Join(dir, "gcs")
	// Every folder of -data is a bucket at start.
	if err := os.MkdirAll(filepath.Join(data, gcsBucket), 0o755); err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	// Objects in memory: its filesystem backend reads a whole object to
	// serve a range of it.
	cmd := exec.Command(bin, "-scheme", "http", "-host", host, "-port", port,
		"-backend", "memory", "-data", data,
		"-public-host", public, "-external-url", "http://"+public, "-log-level", "warn")
	p, err := startProc("fake-gcs-server", cmd, filepath.Join(dir, "fake-gcs-server.log"))
	if err != nil {
		return nil, err
	}
	f := &fakeGCS{proc: p, endpoint: "http://" + addr,
		hc: &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: seedParallel}}}
	if err := waitHTTP(ctx, f.endpoint+"/storage/v1/b/"+gcsBucket, f.done, 60*time.Second); err != nil {
		f.stop()
		return nil, fmt.Errorf("fake-gcs-server: %w\n%s", err, tail(filepath.Join(dir, "fake-gcs-server.log")))
	}
	return f, nil
}

// put stores one object directly, not through the shaped link.
func (f *fakeGCS) put(ctx context.Context, key string, body []byte) error {
	u := f.endpoint + "/upload/storage/v1/b/" + gcsBucket + "/o?" + url.Values{"uploadType": {"media"}, "name": {key}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := f.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fake-gcs-server: put %s: %s", key, resp.Status)
	}
	return nil
}

// exists tells whether one object is there, directly.
func (f *fakeGCS) exists(ctx context.Context, key string) (bool, error) {
	u := f.endpoint + "/storage/v1/b/" + gcsBucket + "/o/" + url.PathEscape(key)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("fake-gcs-server: get %s: %s", key, resp.Status)
}

// googleFront stands in for Google's public endpoints for Distribution:
// the OAuth2 token endpoint and www.googleapis.com, which it forwards to
// the emulator.
type googleFront struct {
	env     []string // for the server's environment
	servers []*http.Server
	wg      sync.WaitGroup
}

func startGoogleFront(dir, emulator string) (*googleFront, error) {
	g := &googleFront{}
	target, err := url.Parse(emulator)
	if err != nil {
		return nil, err
	}
	caPEM, leaf, err := throwawayTLS("www.googleapis.com")
	if err != nil {
		return nil, err
	}
	token, err := g.serve(nil, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"bench","token_type":"Bearer","expires_in":3600}`)
	}))
	if err != nil {
		return nil, err
	}
	api, err := g.serve(&tls.Config{Certificates: []tls.Certificate{leaf}}, &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = target.Host },
	})
	if err != nil {
		g.close()
		return nil, err
	}
	// The HTTPS proxy: every CONNECT is tunnelled to the TLS server above.
	proxy, err := g.serve(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", api)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { _, _ = io.Copy(up, conn); up.Close() }()
		_, _ = io.Copy(conn, up)
		conn.Close()
	}))
	if err != nil {
		g.close()
		return nil, err
	}
	key, err := serviceAccountKey("http://" + token + "/token")
	if err != nil {
		g.close()
		return nil, err
	}
	keyFile, caFile := filepath.Join(dir, "gcs-key.json"), filepath.Join(dir, "gcs-ca.pem")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		g.close()
		return nil, err
	}
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		g.close()
		return nil, err
	}
	g.env = []string{"GOOGLE_APPLICATION_CREDENTIALS=" + keyFile, "HTTPS_PROXY=http://" + proxy, "SSL_CERT_FILE=" + caFile}
	return g, nil
}

// serve runs h on a fresh loopback listener, over TLS with cfg, and
// returns its address.
func (g *googleFront) serve(cfg *tls.Config, h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	g.servers = append(g.servers, s)
	g.wg.Go(func() { _ = s.Serve(l) })
	return l.Addr().String(), nil
}

func (g *googleFront) close() {
	for _, s := range g.servers {
		_ = s.Close()
	}
	g.wg.Wait()
}

// throwawayTLS makes a CA and a certificate it signs for host, and
// returns the CA in PEM and the host's key pair.
func throwawayTLS(host string) ([]byte, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}, nil
}

// serviceAccountKey is a JSON service account key with a fresh RSA key,
// whose tokens come from tokenURI.
func serviceAccountKey(tokenURI string) ([]byte, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{
		"type": "service_account", "project_id": "bench", "private_key_id": "bench",
		"private_key":  strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))) + "\n",
		"client_email": "bench@bench.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": tokenURI,
	})
}
