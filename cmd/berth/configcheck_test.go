package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/storage/driver"
)

// runCmd runs one berth command. serve gets a cancelled context: it
// returns as soon as it would be listening, so "started" is exit code 0.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if args[0] == "serve" {
		cancel()
	}
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb, nil)
	return code, out.String(), errb.String()
}

// countingListener accepts connections on 127.0.0.1 and counts them: a
// command that must need no network is pointed at it.
func countingListener(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), accepted
}

func TestConfigCheckTouchesNothingWithoutConnect(t *testing.T) {
	addr, accepted := countingListener(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	tests := []struct {
		name    string
		storage string
		created string // a path --connect creates and the check must not
	}{
		{"filesystem root", "  filesystem:\n    rootdirectory: " + root + "\n", root},
		{"azure container", "  azure:\n    accountname: devstoreaccount1\n    accountkey: " +
			"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==\n" +
			"    container: c\n    realm: core.windows.net\n    serviceurl: http://" + addr + "/devstoreaccount1\n", ""},
		{"swift auth", "  swift:\n    authurl: http://" + addr + "/v3\n    username: u\n    password: p\n    container: c\n    tenant: t\n    domain: d\n", ""},
		{"s3", "  s3:\n    bucket: b\n    region: us-east-1\n    regionendpoint: http://" + addr + "\n    accesskey: a\n    secretkey: s\n", ""},
		{"gcs", "  gcs:\n    bucket: b\n    endpoint: http://" + addr + "\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yml")
			writeFile(t, cfg, "version: 0.1\nstorage:\n"+tt.storage)
			before := accepted.Load()
			code, _, stderr := runCmd(t, "config", "check", cfg)
			if code != 0 {
				t.Fatalf("config check exit %d: %s", code, stderr)
			}
			if n := accepted.Load() - before; n != 0 {
				t.Errorf("config check made %d connections", n)
			}
			if tt.created != "" {
				if _, err := os.Stat(tt.created); !os.IsNotExist(err) {
					t.Fatalf("config check created %s (stat: %v)", tt.created, err)
				}
				if code, _, stderr := runCmd(t, "config", "check", "--connect", cfg); code != 0 {
					t.Fatalf("config check --connect exit %d: %s", code, stderr)
				}
				if _, err := os.Stat(tt.created); err != nil {
					t.Errorf("config check --connect did not open the driver: %v", err)
				}
			}
		})
	}
	// --connect does go to the network: the Azure container is asked for.
	cfg := filepath.Join(dir, "azure-container.yml")
	before := accepted.Load()
	runCmd(t, "config", "check", "--connect", cfg)
	if accepted.Load() == before {
		t.Error("config check --connect made no connection to the Azure endpoint")
	}
}

func TestConfigCheckRefusesWhatServeRefuses(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "ca")
	tlsOK := tlsFiles(t, ca, dir, 1)
	htpasswdFile := filepath.Join(dir, "htpasswd")
	writeFile(t, htpasswdFile, "")
	base := "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: " + filepath.Join(dir, "root") + "\nhttp:\n  addr: 127.0.0.1:0\n"
	rsaKey := writeRSAKey(t, dir)
	cloudFront := func(opts string) string {
		return "middleware:\n  storage:\n    - name: cloudfront\n      options:\n        baseurl: d1.cloudfront.net\n        " + opts + "\n"
	}
	mirrorWith := func(creds string) string {
		return "berth:\n  mirrors:\n    - prefix: docker.io\n      remoteurl: https://registry-1.docker.io\n      username: u\n      " + creds + "\n"
	}
	tests := []struct {
		name, extra string
		refused     string // "" when both start
	}{
		{"plain", "", ""},
		{"tls files present", "  tls:\n    certificate: " + tlsOK.Certificate + "\n    key: " + tlsOK.Key + "\n", ""},
		{"tls certificate missing", "  tls:\n    certificate: " + filepath.Join(dir, "none.pem") + "\n    key: " + tlsOK.Key + "\n", "none.pem"},
		{"tls key missing", "  tls:\n    certificate: " + tlsOK.Certificate + "\n    key: " + filepath.Join(dir, "nokey.pem") + "\n", "nokey.pem"},
		{"tls certificate and letsencrypt", "  tls:\n    certificate: " + tlsOK.Certificate + "\n    key: " + tlsOK.Key + "\n    letsencrypt:\n      cachefile: " + filepath.Join(dir, "le") + "\n      email: a@example.com\n", "not both"},
		{"clientcas missing", "  tls:\n    certificate: " + tlsOK.Certificate + "\n    key: " + tlsOK.Key + "\n    clientcas: [" + filepath.Join(dir, "noca.pem") + "]\n", "noca.pem"},
		{"rootcertbundle missing", "auth:\n  token:\n    realm: https://auth.example.com/token\n    service: s\n    issuer: i\n    rootcertbundle: " + filepath.Join(dir, "nobundle.pem") + "\n", "nobundle.pem"},
		{"htpasswd missing", "auth:\n  htpasswd:\n    realm: r\n    path: " + filepath.Join(dir, "nohtpasswd") + "\n", "nohtpasswd"},
		{"htpasswd present", "auth:\n  htpasswd:\n    realm: r\n    path: " + htpasswdFile + "\n", ""},
		{"auth silly, as Distribution", "auth:\n  silly:\n    realm: r\n    service: s\n", ""},
		{"bad driver key", "", "colour"},
		// Storage middleware options, checked without the driver or the
		// network (the AWS address ranges are not fetched).
		{"cloudfront key present", cloudFront("privatekey: " + rsaKey + "\n        keypairid: K"), ""},
		{"cloudfront key missing", cloudFront("privatekey: " + filepath.Join(dir, "nopk.pem") + "\n        keypairid: K"), "nopk.pem"},
		{"cloudfront key not a key", cloudFront("privatekey: " + htpasswdFile + "\n        keypairid: K"), "holds no PEM block"},
		{"cloudfront key not RSA", cloudFront("privatekey: " + tlsOK.Key + "\n        keypairid: K"), "not an RSA private key"},
		{"cloudfront keypairid missing", cloudFront("privatekey: " + rsaKey), "options.keypairid: required"},
		{"cloudfront bad filter", cloudFront("privatekey: " + rsaKey + "\n        keypairid: K\n        ipfilteredby: gcp"), "ipfilteredby"},
		{"redirect baseurl relative", "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: /files\n", "options.baseurl"},
		{"redirect disabled and bad", "middleware:\n  storage:\n    - name: redirect\n      disabled: true\n      options:\n        baseurl: /files\n", ""},
		// Mirrors: what serve's mirror refuses, and credentials that could
		// never be read.
		{"proxy", "proxy:\n  remoteurl: https://registry-1.docker.io\n", ""},
		{"proxy remoteurl not http", "proxy:\n  remoteurl: ftp://registry.example.com\n", "want http(s)://host"},
		{"proxy exec on PATH", "proxy:\n  remoteurl: https://registry-1.docker.io\n  exec:\n    command: true\n", ""},
		{"proxy exec not found", "proxy:\n  remoteurl: https://registry-1.docker.io\n  exec:\n    command: docker-credential-nosuchhelper\n", "docker-credential-nosuchhelper"},
		{"mirror passwordfile present", mirrorWith("passwordfile: " + htpasswdFile), ""},
		{"mirror passwordfile missing", mirrorWith("passwordfile: " + filepath.Join(dir, "nopw")), "nopw"},
		{"mirror exec not found", mirrorWith("exec:\n        command: " + filepath.Join(dir, "nohelper")), "nohelper"},
		// Redis's TLS files are read at start; whether it answers is asked
		// only with --connect (TestConfigCheckConnectAsksRedis).
		// Listen addresses that net.Listen could never take (checked
		// without binding: a port in use is found only by serve).
		{"http addr without port", "", "http.addr"},
		{"debug addr without port", "  debug:\n    addr: localhost\n", "http.debug.addr"},
		{"debug addr bad port", "  debug:\n    addr: 127.0.0.1:fivethousand\n", "http.debug.addr"},
		{"distributionuploads on filesystem", "berth:\n  storage:\n    distributionuploads: true\n", ""},
		{"distributionuploads on inmemory", "berth:\n  storage:\n    distributionuploads: true\n", "berth.storage.distributionuploads: works with the filesystem and s3 drivers, not inmemory"},
		{"redis rootcas missing", "redis:\n  addrs: [127.0.0.1:1]\n  tls:\n    rootcas: [" + filepath.Join(dir, "noredisca.pem") + "]\n", "noredisca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := base + tt.extra
			if tt.name == "bad driver key" {
				data = strings.Replace(data, "  filesystem:\n", "  filesystem:\n    colour: blue\n", 1)
			}
			if strings.HasSuffix(tt.name, "on inmemory") {
				data = strings.Replace(data, "storage:\n  filesystem:\n    rootdirectory: "+filepath.Join(dir, "root")+"\n", "storage:\n  inmemory:\n", 1)
			}
			if tt.name == "http addr without port" {
				data = strings.Replace(data, "addr: 127.0.0.1:0\n", "addr: \"5000\"\n", 1)
			}
			if strings.HasPrefix(tt.name, "redis") {
				data = strings.Replace(data, "  filesystem:\n", "  cache:\n    blobdescriptor: redis\n  filesystem:\n", 1)
			}
			cfg := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yml")
			writeFile(t, cfg, data)
			for _, cmd := range [][]string{{"config", "check", cfg}, {"serve", cfg}} {
				code, _, stderr := runCmd(t, cmd...)
				if tt.refused == "" {
					if code != 0 {
						t.Errorf("%s refused: %s", cmd[0], stderr)
					}
					continue
				}
				if code != 1 || !strings.Contains(stderr, tt.refused) {
					t.Errorf("%s: exit %d, stderr %q; want refused naming %q", cmd[0], code, stderr, tt.refused)
				}
			}
		})
	}
}

// writeRSAKey writes a PEM RSA private key, as CloudFront hands out.
func writeRSAKey(t *testing.T, dir string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "pk-cloudfront.pem")
	writeFile(t, p, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})))
	return p
}

func TestConfigCheckRedactsSecretsInTextAndJSON(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "azure.yml")
	writeFile(t, cfg, `version: 0.1
storage:
  azure:
    accountname: acct
    container: c
    connectionstring: "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=QUNDT1VOVEtFWQ==;BlobEndpoint=http://127.0.0.1:1/acct"
http:
  secret: HTTPSECRET
notifications:
  endpoints:
    - name: hook
      url: https://hookuser:HOOKPW@hooks.example.com/e
      headers: {Authorization: [Basic QkFTSUNQVw==]}
proxy:
  remoteurl: https://puller:PROXYPW@upstream.example.com
log:
  hooks:
    - type: mail
      options: {smtp: {addr: "mail.example.com:25", username: u, password: SMTPPW}}
`)
	secrets := []string{"QUNDT1VOVEtFWQ==", "HTTPSECRET", "HOOKPW", "QkFTSUNQVw==", "PROXYPW", "SMTPPW"}
	for _, args := range [][]string{{"config", "check", cfg}, {"config", "check", "--json", cfg}} {
		code, stdout, stderr := runCmd(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		for _, s := range secrets {
			if strings.Contains(stdout, s) || strings.Contains(stderr, s) {
				t.Errorf("%v shows %s:\n%s\n%s", args, s, stdout, stderr)
			}
		}
		if !strings.Contains(stdout, "hooks.example.com") {
			t.Errorf("%v lost the endpoint's host:\n%s", args, stdout)
		}
	}
	_, stdout, _ := runCmd(t, "config", "check", "--json", cfg)
	var out struct {
		Warnings []string       `json:"warnings"`
		NoEffect []string       `json:"noeffect"`
		Config   map[string]any `json:"config"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if !slices.Contains(out.NoEffect, "log.hooks") || !slices.Contains(out.Warnings, config.NoEffectWarning+"log.hooks") {
		t.Errorf("--json noeffect %q, warnings %q: want log.hooks in both", out.NoEffect, out.Warnings)
	}
	if out.Config["version"] != "0.1" {
		t.Errorf("--json config version %v, want 0.1", out.Config["version"])
	}
}

// TestEveryDriverChecksWithoutOpening keeps config check free of side
// effects: a driver without a Checker could only be checked by opening it.
func TestEveryDriverChecksWithoutOpening(t *testing.T) {
	for _, name := range driver.Registered() {
		if err := driver.Check(name, driver.Params{}); errors.Is(err, driver.ErrNoChecker) {
			t.Errorf("storage driver %s registers no Checker (driver.RegisterCheck)", name)
		}
	}
}

// TestConfigCheckRedactsMirrorMiddlewareAndRedisSecrets: the keys that
// came with mirrors, storage middleware and the shared cache are hidden
// in both outputs, a password file's content is never read into them,
// and --json carries the warnings and the no-effect keys beside the
// configuration.
func TestConfigCheckRedactsMirrorMiddlewareAndRedisSecrets(t *testing.T) {
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "CFKEYDIR")
	if err := os.Mkdir(keyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	key := writeRSAKey(t, keyDir)
	pwFile := filepath.Join(dir, "PWFILEPATH")
	writeFile(t, pwFile, "PWFILECONTENT\n")
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, `version: 0.1
storage:
  s3:
    bucket: b
    region: us-east-1
    accesskey: S3ACCESSKEY
    secretkey: S3SECRETKEY
  cache:
    blobdescriptor: redis
redis:
  addrs: [127.0.0.1:1]
  password: REDISPW
  sentinelpassword: SENTINELPW
middleware:
  storage:
    - name: cloudfront
      options:
        baseurl: https://d1.cloudfront.net
        privatekey: `+key+`
        keypairid: APKAEXAMPLE
reporting:
  bugsnag:
    apikey: BUGSNAGKEY
berth:
  mirrors:
    - prefix: docker.io
      remoteurl: https://puller:MIRRORURLPW@registry-1.docker.io
      username: puller
      password: MIRRORPW
    - prefix: ghcr.io
      remoteurl: https://ghcr.io
      username: puller
      passwordfile: `+pwFile+`
`)
	secrets := []string{"S3ACCESSKEY", "S3SECRETKEY", "REDISPW", "SENTINELPW", "CFKEYDIR", "BUGSNAGKEY", "MIRRORURLPW", "MIRRORPW", "PWFILECONTENT", "PWFILEPATH"}
	for _, args := range [][]string{{"config", "check", cfg}, {"config", "check", "--json", cfg}} {
		code, stdout, stderr := runCmd(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		for _, s := range secrets {
			if strings.Contains(stdout, s) || strings.Contains(stderr, s) {
				t.Errorf("%v shows %s", args, s)
			}
		}
		for _, kept := range []string{"registry-1.docker.io", "d1.cloudfront.net", "127.0.0.1:1"} {
			if !strings.Contains(stdout, kept) {
				t.Errorf("%v lost %s, which is no secret", args, kept)
			}
		}
	}
	_, stdout, _ := runCmd(t, "config", "check", "--json", cfg)
	var out struct {
		Warnings []string       `json:"warnings"`
		NoEffect []string       `json:"noeffect"`
		Config   map[string]any `json:"config"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if !slices.Equal(out.NoEffect, []string{"reporting"}) {
		t.Errorf("noeffect %q, want [reporting]", out.NoEffect)
	}
	if !slices.Contains(out.Warnings, config.NoEffectWarning+"reporting") {
		t.Errorf("warnings %q lack the no-effect warning for reporting", out.Warnings)
	}
	berth, _ := out.Config["berth"].(map[string]any)
	mirrors, _ := berth["mirrors"].([]any)
	if len(mirrors) != 2 {
		t.Fatalf("config.berth.mirrors = %v, want the two mirrors", berth["mirrors"])
	}
	if m, _ := mirrors[0].(map[string]any); m["password"] != config.Redaction {
		t.Errorf("berth.mirrors[0].password = %v, want %s", m["password"], config.Redaction)
	}
}

// TestConfigCheckRefusalsHideURLPasswords: a refused URL is quoted in the
// error without the password it carries.
func TestConfigCheckRefusalsHideURLPasswords(t *testing.T) {
	dir := t.TempDir()
	base := "version: 0.1\nstorage:\n  inmemory: {}\n"
	tests := []struct{ name, extra, refused string }{
		{"mirror scheme", "proxy:\n  remoteurl: ftp://puller:FTPPW@registry.example.com\n", "want http(s)://host"},
		{"malformed url", "proxy:\n  remoteurl: https//puller:MALFORMEDPW@registry.example.com\n", "proxy.remoteurl"},
		{"redirect baseurl", "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: cdn://u:CDNPW@\n", "options.baseurl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yml")
			writeFile(t, cfg, base+tt.extra)
			for _, cmd := range [][]string{{"config", "check", cfg}, {"serve", cfg}} {
				code, _, stderr := runCmd(t, cmd...)
				if code != 1 || !strings.Contains(stderr, tt.refused) {
					t.Fatalf("%s: exit %d, stderr %q; want refused naming %q", cmd[0], code, stderr, tt.refused)
				}
				if strings.Contains(stderr, "PW@") {
					t.Errorf("%s shows the password: %s", cmd[0], stderr)
				}
			}
		})
	}
}
