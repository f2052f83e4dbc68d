package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gopkg.in/yaml.v3"

	"github.com/berth-registry/berth/internal/testenv"
)

// mirrorConfigs are the real configs that make a registry a pull-through
// cache: every file of the config corpus with a proxy section that
// Distribution 3 runs, and Distribution's own mirror recipe.
// distribution-config-cache-official.yml is not here: its proxy is a
// `middleware` entry that Distribution 3 removed and both programs refuse
// (cmd/berth/corpus_test.go).
var mirrorConfigs = []string{
	"config/testdata/mirror/distribution-recipe-mirror.yml",
	"config/testdata/corpus/distribution-config-cache.yml",
	"config/testdata/corpus/twuni-chart-s3-proxy-metrics.yml",
	"config/testdata/corpus/deckhouse-system-registry-proxy.yml",
}

// TestMirrorCorpusConfigsRunAsMirrors runs each config of mirrorConfigs,
// changed only where it must be to run here (runHere), as a mirror of a
// CNCF Distribution upstream holding an image, and checks what makes it a
// mirror: a cold pull through it (manifest by tag, every blob, digests
// checked) gives the upstream's image, a warm pull with the upstream
// stopped is served from the cache, and a push is refused with 405
// UNSUPPORTED. A Berth that ignored the proxy section fails each file at
// the cold pull (404 MANIFEST_UNKNOWN). With BERTH_TEST_BINARY pointing at
// CNCF Distribution 3.1.2, the recipe, twuni and deckhouse files pass and
// distribution-config-cache.yml does not start: Distribution 3 reads
// redis.addrs and panics on the file's 2.x redis.addr, which Berth reads.
func TestMirrorCorpusConfigsRunAsMirrors(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	root := testenv.RepoRoot(t)
	for _, file := range mirrorConfigs {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			env := headerEnv(raw)
			if section(doc, "proxy") == nil && env["REGISTRY_PROXY_REMOTEURL"] == "" {
				t.Fatal("no proxy section: not a mirror config")
			}
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))

			// The upstream asks for the credentials the file gives the
			// mirror, so a mirror that did not send them gets nothing.
			user, pass := proxyCredentials(doc, env)
			up := testenv.StartDistribution(t, user, pass, "")
			repo := "library/hello"
			if section(section(doc, "auth"), "token") != nil {
				repo = "team/hello" // the only repositories the test token service grants
			}
			upRef := up.Addr + "/" + repo + ":1.0"
			if user != "" {
				testenv.Run(t, crane, "auth", "login", up.Addr, "-u", user, "-p", pass)
			}
			dir := t.TempDir()
			l1, l2 := filepath.Join(dir, "l1.tar"), filepath.Join(dir, "l2.tar")
			writeTar(t, l1, "hello.txt", "hello through "+filepath.Base(file)+"\n")
			writeTar(t, l2, "second.txt", "a second layer\n")
			testenv.Run(t, crane, "append", "--insecure", "-f", l1, "-f", l2, "-t", upRef)
			want := strings.TrimSpace(testenv.Run(t, crane, "digest", "--insecure", upRef))

			h := runHere(t, doc, env, up)
			out, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			addr := testenv.StartBerth(t, string(out), h.env...)
			craneTo := func(args ...string) []string {
				if !h.tls {
					args = append(args, "--insecure")
				}
				return args
			}
			if h.login != nil {
				testenv.Run(t, crane, "auth", "login", addr, "-u", h.login[0], "-p", h.login[1])
			}
			ref := addr + "/" + repo + ":1.0"

			// Cold: the manifest by tag and every blob come from the upstream.
			testenv.Run(t, crane, craneTo("validate", "--remote", ref)...)
			if got := strings.TrimSpace(testenv.Run(t, crane, craneTo("digest", ref)...)); got != want {
				t.Fatalf("cold pull through the mirror: digest %s, upstream's %s", got, want)
			}
			if n := up.Requests("GET", "/v2/"+repo+"/manifests/1.0"); n == 0 {
				t.Fatal("the upstream served no manifest GET: the cold pull did not go through it")
			}

			// Warm: with the upstream gone, the cache serves it all.
			up.Proc.Stop()
			testenv.Run(t, crane, craneTo("validate", "--remote", ref)...)
			if got := strings.TrimSpace(testenv.Run(t, crane, craneTo("digest", ref)...)); got != want {
				t.Fatalf("warm pull through the mirror: digest %s, upstream's %s", got, want)
			}
			if out := testenv.Run(t, crane, craneTo("export", ref, "-")...); !strings.Contains(out, "hello through "+filepath.Base(file)) {
				t.Fatal("warm pull lacks the image's file")
			}

			// The cache is in the storage the file names: the manifest and
			// every blob it lists. The mirror stores a blob after its fetch
			// has ended, behind the client's answer, so a store may still be
			// running when the pull returns: wait for it, bounded.
			var mf struct {
				Config struct{ Digest string }
				Layers []struct{ Digest string }
			}
			if err := json.Unmarshal([]byte(testenv.Run(t, crane, craneTo("manifest", ref)...)), &mf); err != nil {
				t.Fatal(err)
			}
			stored := []string{want, mf.Config.Digest}
			for _, l := range mf.Layers {
				stored = append(stored, l.Digest)
			}
			for _, d := range stored {
				algo, hex, _ := strings.Cut(d, ":")
				key := fmt.Sprintf("docker/registry/v2/blobs/%s/%s/%s/data", algo, hex[:2], hex)
				if !storedWithin(t, h.stored, key, 30*time.Second) {
					t.Errorf("%s is not in the configured storage (%s) 30 s after the pull", d, key)
				}
			}

			if h.redis != "" {
				n := strings.TrimSpace(testenv.Run(t, testenv.Tool(t, "redis-cli"), "-u", "redis://"+h.redis, "DBSIZE"))
				if n == "0" {
					t.Error("the blob descriptor cache in redis is empty after the pulls")
				}
			}

			// A mirror takes no pushes.
			status, code := startUpload(t, h.client, h.scheme+"://"+addr, repo, h.login)
			if status != http.StatusMethodNotAllowed || code != "UNSUPPORTED" {
				t.Fatalf("push to the mirror: %d %s, want 405 UNSUPPORTED", status, code)
			}
		})
	}
}

// here is what runHere prepared for one config: the environment to start
// Berth with, how to reach it, and the credentials its clients log in with.
type here struct {
	env    []string
	tls    bool
	scheme string
	client *http.Client
	login  []string // user, password for the mirror itself; nil when open
	redis  string   // the redis-server's address, when the config uses redis
	// stored says whether the storage the config names holds key (a path
	// under the driver's root).
	stored func(t *testing.T, key string) bool
}

// runHere rewrites doc and env (a config and the environment its
// deployment sets) in place so that it runs on this machine as a mirror of
// up, changing only what cannot work here and leaving every other key as
// the project wrote it:
//
//   - proxy.remoteurl (or REGISTRY_PROXY_REMOTEURL) becomes up's URL; the
//     credentials stay, as up was started to ask for them. Deckhouse's
//     fork keys (proxy.ca, remotepathonly, localpathalias) stay: Berth
//     ignores them as Distribution does, and up is plain HTTP anyway.
//   - storage: filesystem.rootdirectory becomes a temporary directory; an
//     s3 driver (in the file or REGISTRY_STORAGE_S3_*) becomes a bucket of
//     a MinIO started here: its endpoint, keys, region, bucket, path-style,
//     no TLS.
//   - http.addr is replaced by StartBerth (REGISTRY_HTTP_ADDR, a free
//     loopback port); http.debug.addr becomes a free loopback port.
//   - redis.addr becomes a redis-server started here.
//   - http.tls certificate and key become a test CA's certificate for
//     127.0.0.1 (clients trust the CA through SSL_CERT_FILE).
//   - auth.token: realm (host only, its path kept), rootcertbundle and
//     issuer become the test token service's; autoredirect is turned off,
//     as it points clients at the registry's own host, where deckhouse's
//     ingress serves the token service and nothing does here.
func runHere(t *testing.T, doc map[string]any, env map[string]string, up *testenv.Distribution) here {
	t.Helper()
	h := here{scheme: "http", client: &http.Client{Timeout: time.Minute}}
	upURL := "http://" + up.Addr
	if p := section(doc, "proxy"); p != nil {
		p["remoteurl"] = upURL
	}
	if _, ok := env["REGISTRY_PROXY_REMOTEURL"]; ok {
		env["REGISTRY_PROXY_REMOTEURL"] = upURL
	}

	st := section(doc, "storage")
	if fs := section(st, "filesystem"); fs != nil {
		dir := t.TempDir()
		fs["rootdirectory"] = dir
		h.stored = func(t *testing.T, key string) bool {
			_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(key)))
			return err == nil
		}
	}
	if section(st, "s3") != nil || env["REGISTRY_STORAGE_S3_BUCKET"] != "" {
		m := testenv.StartMinIO(t)
		bucket := m.Bucket(t)
		h.stored = func(t *testing.T, key string) bool {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := m.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			return err == nil
		}
		for k, v := range map[string]string{
			"BUCKET": bucket, "ACCESSKEY": m.AccessKey, "SECRETKEY": m.SecretKey, "REGION": m.Region,
			"REGIONENDPOINT": m.Endpoint, "FORCEPATHSTYLE": "true", "SECURE": "false",
		} {
			env["REGISTRY_STORAGE_S3_"+k] = v
		}
	}

	httpSec := section(doc, "http")
	if d := section(httpSec, "debug"); d != nil {
		d["addr"] = testenv.FreeAddr(t)
	}
	if r := section(doc, "redis"); r != nil {
		h.redis = testenv.StartRedis(t).Addr
		r["addr"] = h.redis
	}

	var caFile, certFile, keyFile string
	certs := func() {
		if caFile != "" {
			return
		}
		d := t.TempDir()
		caFile, certFile, keyFile = filepath.Join(d, "ca.crt"), filepath.Join(d, "cert.pem"), filepath.Join(d, "key.pem")
		writeTestCerts(t, caFile, certFile, keyFile)
		tlsClientEnv(t, caFile)
	}
	if tl := section(httpSec, "tls"); tl != nil {
		certs()
		tl["certificate"], tl["key"] = certFile, keyFile
		h.tls, h.scheme = true, "https"
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		h.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	if tok := section(section(doc, "auth"), "token"); tok != nil {
		certs()
		ts := startTokenService(t, certFile, keyFile)
		realm, err := url.Parse(fmt.Sprint(tok["realm"]))
		if err != nil {
			t.Fatal(err)
		}
		realm.Host = "localhost" + ts.srv.URL[strings.LastIndex(ts.srv.URL, ":"):]
		tok["realm"], tok["rootcertbundle"], tok["issuer"], tok["autoredirect"] = realm.String(), ts.bundle, "e2e-issuer", false
		h.login = []string{"alice", "s3cret"}
	}
	if h.stored == nil {
		t.Fatal("runHere knows no storage driver of this config")
	}
	for k, v := range env {
		h.env = append(h.env, k+"="+v)
	}
	return h
}

// headerEnv reads the `# env: K=V` lines of a corpus file's header: the
// environment its deployment sets (config/testdata/corpus/README.md).
func headerEnv(raw []byte) map[string]string {
	env := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(sc.Text(), "# env: "); ok {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	return env
}

// proxyCredentials are the upstream credentials the config gives the
// mirror, the environment over the file as Berth reads them.
func proxyCredentials(doc map[string]any, env map[string]string) (user, pass string) {
	if p := section(doc, "proxy"); p != nil {
		user, _ = p["username"].(string)
		pass, _ = p["password"].(string)
	}
	if v, ok := env["REGISTRY_PROXY_USERNAME"]; ok {
		user = v
	}
	if v, ok := env["REGISTRY_PROXY_PASSWORD"]; ok {
		pass = v
	}
	return user, pass
}

// section is doc[key] when that is a mapping, else nil.
func section(doc map[string]any, key string) map[string]any {
	m, _ := doc[key].(map[string]any)
	return m
}

var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

// startUpload asks base to start a blob upload in repo, as the first step
// of every push, answering a Bearer challenge with login at the realm it
// names, and returns the status and the first OCI error code.
func startUpload(t *testing.T, client *http.Client, base, repo string, login []string) (int, string) {
	t.Helper()
	post := func(token string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("")
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(ch, "Bearer ") && login != nil {
		resp.Body.Close()
		params := map[string]string{}
		for _, m := range challengeParam.FindAllStringSubmatch(ch, -1) {
			params[m[1]] = m[2]
		}
		q := url.Values{"service": {params["service"]}, "scope": {"repository:" + repo + ":pull,push"}}
		req, err := http.NewRequest(http.MethodGet, params["realm"]+"?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(login[0], login[1])
		tr, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var tok struct{ Token string }
		err = json.NewDecoder(tr.Body).Decode(&tok)
		tr.Body.Close()
		if err != nil || tok.Token == "" {
			t.Fatalf("token for the push: %s %v", tr.Status, err)
		}
		resp = post(tok.Token)
	}
	defer resp.Body.Close()
	var body struct{ Errors []struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if len(body.Errors) == 0 {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, body.Errors[0].Code
}

// storedWithin polls stored for key until it holds or wait has passed.
func storedWithin(t *testing.T, stored func(*testing.T, string) bool, key string, wait time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if stored(t, key) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
