package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
)

// mirrorUpstream starts Distribution with basic auth and puts an image
// (one layer holding hello.txt) and an artifact referring to it there with
// crane and oras. It returns the upstream and the image's reference there.
func mirrorUpstream(t *testing.T, repo string) (*testenv.Distribution, string) {
	t.Helper()
	crane := testenv.Tool(t, "crane")
	oras := testenv.Tool(t, "oras")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
	up := testenv.StartDistribution(t, "puller", "pull-pw", "")
	testenv.Run(t, crane, "auth", "login", up.Addr, "-u", "puller", "-p", "pull-pw")
	dir := t.TempDir()
	layer := filepath.Join(dir, "layer.tar")
	writeTar(t, layer, "hello.txt", "hello through the mirror\n")
	ref := up.Addr + "/" + repo + ":1.0"
	testenv.Run(t, crane, "append", "--insecure", "-f", layer, "-t", ref)
	if err := os.WriteFile(filepath.Join(dir, "sig.txt"), []byte("signed"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.RunIn(t, dir, oras, "attach", "--plain-http", "-u", "puller", "-p", "pull-pw", "--artifact-type", "application/vnd.example.signature", ref, "sig.txt")
	return up, ref
}

// TestMirrorOfDistributionPullsThroughEveryClient runs Distribution's
// mirror recipe (the proxy section, in the file or as REGISTRY_PROXY_*
// variables) against a Distribution upstream with basic auth, and pulls
// through it with crane, skopeo, regctl and oras.
func TestMirrorOfDistributionPullsThroughEveryClient(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	skopeo := testenv.Tool(t, "skopeo")
	regctl := testenv.Tool(t, "regctl")
	oras := testenv.Tool(t, "oras")
	up, _ := mirrorUpstream(t, "library/hello")
	for _, tc := range []struct {
		name   string
		config string
		env    []string
	}{
		{"proxy section", fmt.Sprintf("proxy:\n  remoteurl: http://%s\n  username: puller\n  password: pull-pw\n", up.Addr), nil},
		{"REGISTRY_PROXY variables", "", []string{"REGISTRY_PROXY_REMOTEURL=http://" + up.Addr, "REGISTRY_PROXY_USERNAME=puller", "REGISTRY_PROXY_PASSWORD=pull-pw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := testenv.StartBerth(t, filesystemConfig(t.TempDir())+tc.config, tc.env...)
			ref := addr + "/library/hello:1.0"
			if out := testenv.Run(t, crane, "export", "--insecure", ref, "-"); !strings.Contains(out, "hello through the mirror") {
				t.Fatal("crane export through the mirror lacks the file")
			}
			if out := testenv.Run(t, skopeo, "inspect", "--tls-verify=false", "docker://"+ref); !strings.Contains(out, `"Layers"`) {
				t.Fatalf("skopeo inspect:\n%s", out)
			}
			testenv.Run(t, skopeo, "copy", "--src-tls-verify=false", "docker://"+ref, "dir:"+t.TempDir())
			testenv.Run(t, regctl, "registry", "set", "--tls", "disabled", addr)
			if got := strings.TrimSpace(testenv.Run(t, regctl, "image", "digest", ref)); got != strings.TrimSpace(testenv.Run(t, crane, "digest", "--insecure", up.Addr+"/library/hello:1.0")) {
				t.Fatalf("regctl digest through the mirror %s differs from the upstream's", got)
			}
			// Referrers come from the upstream's referrers API.
			var found struct {
				Referrers []struct{ ArtifactType string } `json:"referrers"`
			}
			out := testenv.Run(t, oras, "discover", "--plain-http", "--format", "json", ref)
			if err := json.Unmarshal([]byte(out), &found); err != nil || len(found.Referrers) != 1 || found.Referrers[0].ArtifactType != "application/vnd.example.signature" {
				t.Fatalf("oras discover through the mirror: %s (%v)", out, err)
			}
			// A mirror takes no pushes.
			layer := filepath.Join(t.TempDir(), "l.tar")
			writeTar(t, layer, "x", "x")
			out2, err := exec.Command(crane, "append", "--insecure", "-f", layer, "-t", addr+"/library/pushed:1").CombinedOutput()
			if err == nil || !strings.Contains(string(out2), "UNSUPPORTED") {
				t.Fatalf("push to the mirror: %v\n%s", err, out2)
			}
		})
	}
}

// TestMirrorOfTokenAuthBerth mirrors a Berth with token auth over TLS:
// the mirror follows the bearer challenge to the token service.
func TestMirrorOfTokenAuthBerth(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	upAddr, caFile := tokenBerth(t)
	tlsClientEnv(t, caFile) // the mirror inherits SSL_CERT_FILE
	testenv.Run(t, crane, "auth", "login", upAddr, "-u", "alice", "-p", "s3cret")
	layer := filepath.Join(t.TempDir(), "layer.tar")
	writeTar(t, layer, "hello.txt", "hello through a token\n")
	testenv.Run(t, crane, "append", "-f", layer, "-t", upAddr+"/team/app:1.0")

	addr := testenv.StartBerth(t, filesystemConfig(t.TempDir())+fmt.Sprintf("proxy:\n  remoteurl: https://%s\n  username: alice\n  password: s3cret\n", upAddr))
	if out := testenv.Run(t, crane, "export", "--insecure", addr+"/team/app:1.0", "-"); !strings.Contains(out, "hello through a token") {
		t.Fatal("crane export through the mirror lacks the file")
	}
	// The token service grants nothing outside team/: the mirror says
	// the upstream refused, it does not hang or answer 500.
	resp, err := http.Get("http://" + addr + "/v2/other/app/manifests/1.0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusInternalServerError {
		t.Fatalf("outside the granted scope: %s", resp.Status)
	}
}

// TestMirrorsByPrefixBesidePushableRepositories runs one Berth as the
// mirror of an upstream under a prefix and as a registry for everything
// else, with the ns parameter, per-upstream metrics and fill events.
func TestMirrorsByPrefixBesidePushableRepositories(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	up, _ := mirrorUpstream(t, "library/hello")
	var mu sync.Mutex
	var events []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Events []map[string]any }
		_ = json.NewDecoder(r.Body).Decode(&env)
		mu.Lock()
		events = append(events, env.Events...)
		mu.Unlock()
	}))
	defer hook.Close()
	debug := testenv.FreeAddr(t)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("pull-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filesystemConfig(t.TempDir()) + fmt.Sprintf(`  debug:
    addr: %s
    prometheus:
      enabled: true
notifications:
  endpoints:
    - name: hook
      url: %s
      timeout: 5s
      backoff: 100ms
berth:
  mirrors:
    - prefix: upstream.test
      remoteurl: http://%s
      username: puller
      passwordfile: %s
`, debug, hook.URL, up.Addr, pwFile)
	addr := testenv.StartBerth(t, cfg)

	if out := testenv.Run(t, crane, "export", "--insecure", addr+"/upstream.test/library/hello:1.0", "-"); !strings.Contains(out, "hello through the mirror") {
		t.Fatal("pull under the prefix lacks the file")
	}
	// Outside the prefix: an ordinary registry.
	layer := filepath.Join(t.TempDir(), "l.tar")
	writeTar(t, layer, "own.txt", "our own image\n")
	testenv.Run(t, crane, "append", "--insecure", "-f", layer, "-t", addr+"/company/app:1")
	if out := testenv.Run(t, crane, "export", "--insecure", addr+"/company/app:1", "-"); !strings.Contains(out, "our own image") {
		t.Fatal("own image lost")
	}
	// Under the prefix: pushes refused.
	if out, err := exec.Command(crane, "append", "--insecure", "-f", layer, "-t", addr+"/upstream.test/library/hello:2").CombinedOutput(); err == nil {
		t.Fatalf("push under a mirror prefix succeeded:\n%s", out)
	}
	// ns selects the upstream, as containerd's hosts.toml mirrors ask.
	resp, err := http.Get("http://" + addr + "/v2/library/hello/manifests/1.0?ns=upstream.test")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("OCI-Namespace") != "upstream.test" {
		t.Fatalf("?ns=upstream.test: %s, OCI-Namespace %q", resp.Status, resp.Header.Get("OCI-Namespace"))
	}
	// Metrics per upstream.
	resp, err = http.Get("http://" + debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`registry_mirror_misses_total{upstream="upstream.test=http://%s"}`, up.Addr)
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %s", want)
	}
	// Fill events, marked as such.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, e := range events {
			target, _ := e["target"].(map[string]any)
			if e["action"] == "fill" && target["upstream"] == "http://"+up.Addr {
				n++
			}
		}
		mu.Unlock()
		if n >= 2 { // the manifest and the layer crane export read
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fill events, want the manifest and its blobs", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMirrorTTLEvictsAcrossARestart fills a mirror with a short TTL,
// restarts it before the TTL passes, and sees the restarted one evict the
// content (data too, as every repository is a mirror) and fetch it again.
func TestMirrorTTLEvictsAcrossARestart(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	up, upRef := mirrorUpstream(t, "library/ttl")
	var m struct {
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal([]byte(testenv.Run(t, crane, "manifest", "--insecure", upRef)), &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("upstream manifest: %v", err)
	}
	layer := m.Layers[0].Digest
	root := t.TempDir()
	cfg := filesystemConfig(root) + fmt.Sprintf("proxy:\n  remoteurl: http://%s\n  username: puller\n  password: pull-pw\n  ttl: 3s\n", up.Addr)

	first, p := testenv.StartBerthProcess(t, cfg)
	testenv.Run(t, crane, "export", "--insecure", first+"/library/ttl:1.0", "-")
	data := filepath.Join(root, "docker/registry/v2/blobs/sha256", layer[7:9], layer[7:], "data")
	link := filepath.Join(root, "docker/registry/v2/repositories/library/ttl/_layers/sha256", layer[7:], "link")
	waitFile(t, data, true)
	waitFile(t, filepath.Join(root, "docker/registry/v2/_berth/mirror/expiry/library/ttl/_blobs/sha256", layer[7:]), true)
	p.Stop()

	again := testenv.StartBerth(t, cfg)
	waitFile(t, link, false)
	waitFile(t, data, false)
	// The whole round: no entry left for the repository.
	waitNoFiles(t, filepath.Join(root, "docker/registry/v2/_berth/mirror/expiry/library/ttl"))
	if out := testenv.Run(t, crane, "export", "--insecure", again+"/library/ttl:1.0", "-"); !strings.Contains(out, "hello through the mirror") {
		t.Fatal("pull after eviction lacks the file")
	}
	if n := up.Requests(http.MethodGet, "/v2/library/ttl/blobs/"+layer); n != 2 {
		t.Fatalf("upstream served the layer %d times, want 2 (before and after eviction)", n)
	}
}

// waitFile waits, a bounded time, until path exists (or is gone).
func waitFile(t *testing.T, path string, exists bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := os.Stat(path)
		if (err == nil) == exists {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: exists=%v after 60s, want %v", path, err == nil, exists)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitNoFiles waits, a bounded time, until no file is left below dir.
func waitNoFiles(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := 0
		_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return nil
		})
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d files left below %s after 60s", n, dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDockerPullThroughRegistryMirrors points a second dockerd's
// registry-mirrors at Berth: a pull of a Docker Hub name is answered from
// the upstream through the mirror (this machine cannot reach Docker Hub,
// so the pull succeeds only through it).
func TestDockerPullThroughRegistryMirrors(t *testing.T) {
	docker := testenv.Tool(t, "docker")
	up, _ := mirrorUpstream(t, "library/hello")
	addr := testenv.StartBerth(t, filesystemConfig(t.TempDir())+fmt.Sprintf("proxy:\n  remoteurl: http://%s\n  username: puller\n  password: pull-pw\n", up.Addr))
	d := testenv.StartDockerd(t, map[string]any{
		"registry-mirrors":    []string{"http://" + addr},
		"insecure-registries": []string{addr},
	})
	testenv.Run(t, docker, "-H", d.Host, "pull", "hello:1.0")
	out := testenv.Run(t, docker, "-H", d.Host, "image", "inspect", "--format", "{{len .RootFS.Layers}}", "hello:1.0")
	if strings.TrimSpace(out) != "1" {
		t.Fatalf("pulled image has %s layers, want 1", out)
	}
}

// TestContainerdHostsTomlSelectsTheUpstreamByNs pulls docker.io and a
// second registry's names through one Berth with containerd's mirror
// configuration (hosts.toml per registry): containerd adds ?ns=<registry>
// and Berth serves the upstream configured for that prefix.
func TestContainerdHostsTomlSelectsTheUpstreamByNs(t *testing.T) {
	ctr := testenv.Tool(t, "ctr")
	hub, _ := mirrorUpstream(t, "library/hello")
	other, _ := mirrorUpstream(t, "team/tool")
	addr := testenv.StartBerth(t, filesystemConfig(t.TempDir())+fmt.Sprintf(`berth:
  mirrors:
    - {prefix: docker.io, remoteurl: "http://%s", username: puller, password: pull-pw}
    - {prefix: quay.io, remoteurl: "http://%s", username: puller, password: pull-pw}
`, hub.Addr, other.Addr))
	d := testenv.StartDockerd(t, nil)
	hosts := t.TempDir()
	for reg, server := range map[string]string{"docker.io": "https://registry-1.docker.io", "quay.io": "https://quay.io"} {
		if err := os.MkdirAll(filepath.Join(hosts, reg), 0o755); err != nil {
			t.Fatal(err)
		}
		toml := fmt.Sprintf("server = %q\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", server, addr)
		if err := os.WriteFile(filepath.Join(hosts, reg, "hosts.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{"docker.io/library/hello:1.0", "quay.io/team/tool:1.0"} {
		testenv.Run(t, ctr, "-a", d.Containerd, "-n", "berth", "images", "pull", "--hosts-dir", hosts, ref)
	}
	out := testenv.Run(t, ctr, "-a", d.Containerd, "-n", "berth", "images", "ls", "-q")
	for _, ref := range []string{"docker.io/library/hello:1.0", "quay.io/team/tool:1.0"} {
		if !strings.Contains(out, ref) {
			t.Fatalf("containerd lacks %s after the pull:\n%s", ref, out)
		}
	}
}
