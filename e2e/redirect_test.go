package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
)

// redirectBackend starts an object store and returns the storage section
// of a Berth config on it (redirects on), the environment Berth needs,
// and a client that can fetch what the store serves.
type redirectBackend func(t *testing.T) (section string, env []string, client *http.Client)

var redirectBackends = map[string]redirectBackend{
	"s3": func(t *testing.T) (string, []string, *http.Client) {
		return objectStores["s3"](t), nil, http.DefaultClient
	},
	// The gcs driver signs URLs with a service account key: a throwaway
	// one, whose token server is on loopback (fake-gcs-server ignores the
	// token, but the client must get one).
	"gcs": func(t *testing.T) (string, []string, *http.Client) {
		return objectStores["gcs"](t) + "    keyfile: " + serviceAccountKeyfile(t) + "\n", nil, http.DefaultClient
	},
	// The azure driver's SAS URLs are HTTPS-only (spr=https), which
	// Azurite enforces: it serves HTTPS here, and Berth trusts it through
	// SSL_CERT_FILE.
	"azure": func(t *testing.T) (string, []string, *http.Client) {
		dir := t.TempDir()
		ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		writeTestCerts(t, ca, cert, key)
		a := testenv.StartAzuriteTLS(t, cert, key, ca)
		section := fmt.Sprintf(`  azure:
    accountname: %s
    accountkey: %s
    container: %s
    serviceurl: %s
`, a.Account, a.Key, a.Container(t), a.ServiceURL)
		return section, []string{"SSL_CERT_FILE=" + ca}, a.HTTPClient
	},
}

// TestBlobGETRedirectsToTheObjectStore pushes a blob through Berth on each
// object store with storage.redirect on, and checks that a GET is a 307 to
// the store itself (not to Berth) and that following it yields the blob's
// bytes, whole and ranged.
func TestBlobGETRedirectsToTheObjectStore(t *testing.T) {
	for name, start := range redirectBackends {
		t.Run(name, func(t *testing.T) {
			section, env, client := start(t)
			berth := "http://" + testenv.StartBerth(t, "version: 0.1\nstorage:\n"+section, env...)
			blob := make([]byte, 1<<20+17)
			if _, err := rand.Read(blob); err != nil {
				t.Fatal(err)
			}
			d := pushBlob(t, berth, "/v2/redirected/app", blob)
			blobURL := berth + "/v2/redirected/app/blobs/" + d.String()

			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err := noFollow.Get(blobURL)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			loc, err := url.Parse(res.Header.Get("Location"))
			if res.StatusCode != http.StatusTemporaryRedirect || err != nil {
				t.Fatalf("GET: status %d, Location %q; want a 307 to the store", res.StatusCode, res.Header.Get("Location"))
			}
			if b, _ := url.Parse(berth); loc.Host == b.Host {
				t.Fatalf("redirected to Berth itself: %s", loc)
			}

			for _, rng := range []struct {
				header string
				want   []byte
			}{{"", blob}, {"bytes=1000-", blob[1000:]}, {"bytes=10-19", blob[10:20]}} {
				req, _ := http.NewRequest(http.MethodGet, blobURL, nil)
				if rng.header != "" {
					req.Header.Set("Range", rng.header)
				}
				res, err := client.Do(req)
				if err != nil {
					t.Fatalf("following the redirect (Range %q): %v", rng.header, err)
				}
				got, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if res.Request.URL.Host == loc.Host && res.StatusCode < 300 && string(got) == string(rng.want) {
					continue
				}
				t.Fatalf("Range %q: status %d from %s, %d bytes (want %d from %s)", rng.header, res.StatusCode, res.Request.URL.Host, len(got), len(rng.want), loc.Host)
			}
		})
	}
}

// serviceAccountKeyfile writes a throwaway GCS service account key whose
// token_uri is a token server on loopback, and returns its path.
func serviceAccountKeyfile(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"test-token","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(ts.Close)
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "berth-test",
		"private_key_id": "k1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "registry@berth-test.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      ts.URL + "/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDockerPullFollowsRedirectToMinIO pushes and pulls an image with
// docker through Berth on MinIO with storage.redirect on: the daemon
// fetches the layers from MinIO through the 307s Berth answers.
func TestDockerPullFollowsRedirectToMinIO(t *testing.T) {
	docker := testenv.Docker(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("DOCKER_BUILDKIT", "0")
	cfg := "version: 0.1\nlog:\n  level: info\nstorage:\n" + objectStores["s3"](t) + "http:\n  secret: e2e\n"
	addr, p := testenv.StartBerthProcess(t, cfg)
	image := addr + "/redirected/app:1.0"
	dockerRoundTrip(t, docker, buildImageContext(t), image, image)
	// The access log shows the blob GETs of the pull answered with 307.
	if !regexp.MustCompile(`method=GET route=/v2/<name>/blobs/<digest> repo=redirected/app .*status=307`).MatchString(p.Log()) {
		t.Fatalf("no blob GET was redirected; log:\n%s", p.Log())
	}
}

// TestRedirectMiddlewareThroughServe configures middleware.storage as a
// Distribution config would and checks the Location a blob GET gets: the
// middleware's URL, not Berth serving the blob.
func TestRedirectMiddlewareThroughServe(t *testing.T) {
	cfg := filesystemConfig(t.TempDir()) + `middleware:
  storage:
    - name: redirect
      options:
        baseurl: https://files.example.com/registry
`
	berth := "http://" + testenv.StartBerth(t, cfg)
	d := pushBlob(t, berth, "/v2/mw/app", []byte("served elsewhere"))
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(berth + "/v2/mw/app/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	want := "https://files.example.com/registry/docker/registry/v2/blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded() + "/data"
	if res.StatusCode != http.StatusTemporaryRedirect || res.Header.Get("Location") != want {
		t.Fatalf("status %d, Location %q; want 307 to %s", res.StatusCode, res.Header.Get("Location"), want)
	}
}
