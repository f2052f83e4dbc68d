package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
)

// TestImageServesPushAndPullWithMountedConfig builds the Berth image with
// `make image`, runs it as the README shows (a config file mounted at
// /etc/berth/config.yml, the data on the image's volume), and pushes, pulls
// and runs an image through it with docker.
func TestImageServesPushAndPullWithMountedConfig(t *testing.T) {
	docker := testenv.Docker(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("DOCKER_BUILDKIT", "0")
	root := testenv.RepoRoot(t)
	tag := fmt.Sprintf("berth:e2e-%d", time.Now().UnixNano())
	testenv.RunIn(t, root, "make", "image", "IMAGE="+tag, "IMAGE_LATEST=", "IMAGE_CTX="+filepath.Join(t.TempDir(), "image"))
	t.Cleanup(func() { _ = testenv.RunQuiet(docker, "rmi", "-f", tag) })

	// The image runs as an unprivileged user with the default config there.
	user := strings.TrimSpace(testenv.Run(t, docker, "image", "inspect", "--format", "{{.Config.User}}", tag))
	if user == "" || strings.HasPrefix(user, "0") || user == "root" {
		t.Errorf("image runs as %q, want an unprivileged user", user)
	}

	addr := testenv.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: %s
`, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer(":", "-").Replace(tag)
	testenv.Run(t, docker, "run", "-d", "--name", name, "--network", "host",
		"-v", cfg+":/etc/berth/config.yml:ro", tag)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command(docker, "logs", name).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		_ = testenv.RunQuiet(docker, "rm", "-f", "-v", name)
	})
	testenv.WaitHTTP(t, "http://"+addr+"/v2/", 30*time.Second)

	image := addr + "/team/app:1.0"
	dockerRoundTrip(t, docker, buildImageContext(t), image, image)

	// registry:2 users mount their config at Distribution's path and pass
	// no command: the image serves that file too.
	crane := testenv.Tool(t, "crane")
	addr2 := testenv.FreeAddr(t)
	cfg2 := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfg2, []byte(fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: %s\n", addr2)), 0o644); err != nil {
		t.Fatal(err)
	}
	name2 := name + "-distribution-path"
	testenv.Run(t, docker, "run", "-d", "--name", name2, "--network", "host",
		"-v", cfg2+":/etc/docker/registry/config.yml:ro", tag)
	t.Cleanup(func() { _ = testenv.RunQuiet(docker, "rm", "-f", "-v", name2) })
	testenv.WaitHTTP(t, "http://"+addr2+"/v2/", 30*time.Second)
	testenv.Run(t, crane, "append", "--insecure", "-f", writeLayer(t, t.TempDir(), "distpath"), "-t", addr2+"/team/app:1")
	testenv.Run(t, crane, "validate", "--insecure", "--remote", addr2+"/team/app:1")
}
