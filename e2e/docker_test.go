package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
)

const dockerfile = `FROM scratch
COPY hello /hello
COPY a.txt /data/a.txt
COPY b.txt /data/b.txt
ENTRYPOINT ["/hello"]
`

// filesystemConfig is a Berth config storing under dir; http.addr is
// replaced by StartBerth.
func filesystemConfig(dir string) string {
	return fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
`, dir)
}

// buildImageContext writes a Docker build context for a FROM scratch image
// of three layers, a static Go binary as entrypoint and two small files,
// and returns its directory.
func buildImageContext(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, err := filepath.Abs(filepath.Join("testdata", "hello", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CGO_ENABLED", "0")
	testenv.RunIn(t, dir, "go", "build", "-o", filepath.Join(dir, "hello"), src)
	files := map[string]string{
		"Dockerfile": dockerfile,
		"a.txt":      "first file layer\n",
		"b.txt":      "second file layer\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var pushDigest = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`)

// dockerRoundTrip builds the test image as pushRef, pushes it, removes it,
// pulls pullRef (the same image, possibly through another address) and
// runs it. It checks that the pulled image carries the pushed digest and
// that it runs, and returns the digest and what the run printed.
func dockerRoundTrip(t *testing.T, docker, buildCtx, pushRef, pullRef string) (pushed, output string) {
	t.Helper()
	t.Cleanup(func() {
		// Best effort: the images may already be gone.
		_ = testenv.RunQuiet(docker, "rmi", "-f", pushRef)
		_ = testenv.RunQuiet(docker, "rmi", "-f", pullRef)
	})
	testenv.Run(t, docker, "build", "-t", pushRef, buildCtx)
	out := testenv.Run(t, docker, "push", pushRef)
	m := pushDigest.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("docker push printed no digest:\n%s", out)
	}
	testenv.Run(t, docker, "rmi", pushRef)
	testenv.Run(t, docker, "pull", pullRef)
	if got := testenv.Run(t, docker, "image", "inspect", "--format", "{{json .RepoDigests}}", pullRef); !strings.Contains(got, m[1]) {
		t.Errorf("image pulled as %s has digests %s, want %s", pullRef, strings.TrimSpace(got), m[1])
	}
	output = testenv.Run(t, docker, "run", "--rm", "--network", "host", pullRef)
	if !strings.HasPrefix(output, "hello from a berth image") {
		t.Errorf("docker run of %s printed %q", pullRef, output)
	}
	return m[1], output
}

func TestDockerPushPullRun(t *testing.T) {
	docker := testenv.Docker(t)
	// A private client config, and the classic builder: the daemon may be
	// older than the CLI and have no BuildKit.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("DOCKER_BUILDKIT", "0")

	root := t.TempDir()
	addr := testenv.StartBerth(t, filesystemConfig(root))
	image := addr + "/team/app:1.0"
	pushed, got := dockerRoundTrip(t, docker, buildImageContext(t), image, image)
	want := "hello from a berth image\n/data/a.txt: first file layer\n/data/b.txt: second file layer\n"
	if got != want {
		t.Errorf("docker run printed %q, want %q", got, want)
	}
	repoDigests := testenv.Run(t, docker, "image", "inspect", "--format", "{{json .RepoDigests}}", image)
	if want := addr + "/team/app@" + pushed; !strings.Contains(repoDigests, want) {
		t.Errorf("pulled image has repo digests %s, want %s", strings.TrimSpace(repoDigests), want)
	}

	// docker manifest inspect reads the manifest through the API.
	inspected := testenv.Run(t, docker, "manifest", "inspect", "--insecure", image)
	if !strings.Contains(inspected, `"layers"`) || !strings.Contains(inspected, "schemaVersion") {
		t.Errorf("docker manifest inspect printed:\n%s", inspected)
	}

	// The push must land in Distribution's layout, so either registry can
	// serve what the other wrote.
	repo := filepath.Join(root, "docker", "registry", "v2", "repositories", "team", "app", "_manifests", "tags", "1.0", "current", "link")
	link, err := os.ReadFile(repo)
	if err != nil {
		t.Fatalf("tag link not in Distribution's layout: %v", err)
	}
	if string(link) != pushed {
		t.Errorf("tag link holds %q, want %q", link, pushed)
	}
}
