package e2e

import (
	"archive/tar"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
)

// TestDistributionServesTreeWrittenByBerth pushes images through Berth, then
// points CNCF Distribution v3 at the same filesystem root and checks that it
// lists, resolves and fully validates everything Berth stored. (The other
// direction, Berth serving a tree Distribution wrote, is
// storage.TestServesTreeWrittenByDistribution.)
func TestDistributionServesTreeWrittenByBerth(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	distribution := testenv.Tool(t, "registry")
	root := t.TempDir()
	berth := testenv.StartBerth(t, filesystemConfig(root))

	// Docker-typed and OCI-typed images from scratch, a second tag on one
	// digest, a multi-arch index, and a cross-repository copy.
	dir := t.TempDir()
	layers := []string{writeLayer(t, dir, "one"), writeLayer(t, dir, "two"), writeLayer(t, dir, "three")}
	testenv.Run(t, crane, "append", "--insecure", "-f", layers[0], "-f", layers[1], "-t", berth+"/team/app:docker")
	testenv.Run(t, crane, "append", "--insecure", "--oci-empty-base", "-f", layers[0], "-f", layers[2], "-t", berth+"/team/app:oci")
	testenv.Run(t, crane, "tag", "--insecure", berth+"/team/app:oci", "latest")
	testenv.Run(t, crane, "index", "append", "--insecure",
		"-m", berth+"/team/app:oci", "-m", berth+"/team/app:docker", "-t", berth+"/team/app:multi")
	testenv.Run(t, crane, "copy", "--insecure", berth+"/team/app:multi", berth+"/other:multi")

	refs := []string{"team/app:docker", "team/app:oci", "team/app:latest", "team/app:multi", "other:multi"}
	want := map[string]string{}
	for _, ref := range refs {
		want[ref] = strings.TrimSpace(testenv.Run(t, crane, "digest", "--insecure", berth+"/"+ref))
	}

	cfg := filepath.Join(t.TempDir(), "distribution.yml")
	dist := testenv.FreeAddr(t)
	writeConfig(t, cfg, fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`, root, dist))
	p := testenv.StartProcess(t, distribution, []string{"serve", cfg}, nil)
	p.WaitHTTP(t, "http://"+dist+"/v2/", 30*time.Second)

	if got, want := lines(testenv.Run(t, crane, "catalog", "--insecure", dist)), []string{"other", "team/app"}; !equal(got, want) {
		t.Errorf("Distribution's catalog = %v, want %v", got, want)
	}
	if got, want := lines(testenv.Run(t, crane, "ls", "--insecure", dist+"/team/app")), []string{"docker", "latest", "multi", "oci"}; !equal(got, want) {
		t.Errorf("Distribution's tags of team/app = %v, want %v", got, want)
	}
	for _, ref := range refs {
		got := strings.TrimSpace(testenv.Run(t, crane, "digest", "--insecure", dist+"/"+ref))
		if got != want[ref] {
			t.Errorf("Distribution resolves %s to %s, Berth to %s", ref, got, want[ref])
		}
		// validate --remote fetches every manifest and blob and checks
		// their digests and sizes.
		testenv.Run(t, crane, "validate", "--insecure", "--remote", dist+"/"+ref)
	}
}

// writeLayer writes a one-file layer tarball named after content.
func writeLayer(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, content+".tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	body := []byte(strings.Repeat(content+"\n", 100))
	if err := tw.WriteHeader(&tar.Header{Name: content + ".txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func lines(s string) []string {
	return strings.Fields(s)
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}
