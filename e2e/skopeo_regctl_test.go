package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
)

// TestSkopeoScenario copies an OCI layout to Berth and back, inspects it,
// copies a multi-arch index with --all, and deletes.
func TestSkopeoScenario(t *testing.T) {
	skopeo := testenv.Tool(t, "skopeo")
	crane := testenv.Tool(t, "crane")
	addr := testenv.StartBerth(t, filesystemConfig(t.TempDir()))
	dir := t.TempDir()
	t.Setenv("HOME", t.TempDir())

	// An OCI layout to start from, made with crane through Berth itself.
	testenv.Run(t, crane, "append", "--insecure", "--oci-empty-base", "-f", writeLayer(t, dir, "layout"), "-t", addr+"/seed/app:1")
	layout := filepath.Join(dir, "layout")
	testenv.Run(t, crane, "pull", "--insecure", "--format", "oci", addr+"/seed/app:1", layout)

	noTLS := []string{"--src-tls-verify=false", "--dest-tls-verify=false"}
	testenv.Run(t, skopeo, append([]string{"copy"}, append(noTLS, "oci:"+layout, "docker://"+addr+"/team/app:1")...)...)
	back := filepath.Join(dir, "back")
	testenv.Run(t, skopeo, append([]string{"copy"}, append(noTLS, "docker://"+addr+"/team/app:1", "oci:"+back+":1")...)...)
	var inspect struct{ Digest string }
	out := testenv.Run(t, skopeo, "inspect", "--tls-verify=false", "docker://"+addr+"/team/app:1")
	if err := json.Unmarshal([]byte(out), &inspect); err != nil || inspect.Digest == "" {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	if want := strings.TrimSpace(testenv.Run(t, crane, "digest", "--insecure", addr+"/seed/app:1")); inspect.Digest != want {
		t.Errorf("copied image has digest %s, the source %s", inspect.Digest, want)
	}

	// A multi-arch index, copied whole.
	testenv.Run(t, crane, "append", "--insecure", "--oci-empty-base", "-f", writeLayer(t, dir, "arm"), "-t", addr+"/seed/app:arm")
	testenv.Run(t, crane, "index", "append", "--insecure", "-m", addr+"/seed/app:1", "-m", addr+"/seed/app:arm", "-t", addr+"/seed/app:multi")
	testenv.Run(t, skopeo, append([]string{"copy", "--all"}, append(noTLS, "docker://"+addr+"/seed/app:multi", "docker://"+addr+"/team/multi:1")...)...)
	testenv.Run(t, crane, "validate", "--insecure", "--remote", addr+"/team/multi:1")
	// skopeo 1.9 rewrites the index without the descriptors' artifactType
	// (it predates the field), so the index digest changes; the children
	// it copied must be the same manifests.
	if src, dst := children(t, crane, addr+"/seed/app:multi"), children(t, crane, addr+"/team/multi:1"); !slices.Equal(src, dst) || len(src) != 2 {
		t.Errorf("index copied with --all has children %v, the source %v", dst, src)
	}

	testenv.Run(t, skopeo, "delete", "--tls-verify=false", "docker://"+addr+"/team/app:1")
	if out, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "docker://"+addr+"/team/app:1").CombinedOutput(); err == nil {
		t.Errorf("deleted image still inspects:\n%s", out)
	}
}

// TestRegctlScenario copies an image, lists tags, reads a manifest, and
// puts and lists an artifact with regctl.
func TestRegctlScenario(t *testing.T) {
	regctl := testenv.Tool(t, "regctl")
	crane := testenv.Tool(t, "crane")
	addr := testenv.StartBerth(t, filesystemConfig(t.TempDir()))
	t.Setenv("HOME", t.TempDir())
	dir := t.TempDir()
	testenv.Run(t, regctl, "registry", "set", "--tls", "disabled", addr)
	testenv.Run(t, crane, "append", "--insecure", "-f", writeLayer(t, dir, "regctl"), "-t", addr+"/team/app:1")

	testenv.Run(t, regctl, "image", "copy", addr+"/team/app:1", addr+"/team/app:2")
	if got := strings.Fields(testenv.Run(t, regctl, "tag", "ls", addr+"/team/app")); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("regctl tag ls = %v", got)
	}
	m1 := testenv.Run(t, regctl, "manifest", "get", "--format", "raw-body", addr+"/team/app:1")
	m2 := testenv.Run(t, regctl, "manifest", "get", "--format", "raw-body", addr+"/team/app:2")
	if m1 != m2 || !strings.Contains(m1, `"layers"`) {
		t.Errorf("manifests differ or are not image manifests:\n%s\n%s", m1, m2)
	}

	cmd := exec.Command(regctl, "artifact", "put", "--artifact-type", "application/vnd.example.report", "--subject", addr+"/team/app:1")
	cmd.Stdin = strings.NewReader("report body")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("regctl artifact put: %v\n%s", err, out)
	}
	out := testenv.Run(t, regctl, "artifact", "list", "--format", "{{jsonPretty .}}", addr+"/team/app:1")
	if !strings.Contains(out, "application/vnd.example.report") {
		t.Errorf("regctl artifact list does not show the report:\n%s", out)
	}
	// The report is found through the referrers API, not through a
	// fallback tag regctl would have pushed to a registry without it.
	subject := strings.TrimSpace(testenv.Run(t, regctl, "image", "digest", addr+"/team/app:1"))
	if got := referrers(t, addr, "team/app", subject); len(got) != 1 {
		t.Errorf("referrers API lists %v, want the report", got)
	}
	if got := strings.Fields(testenv.Run(t, regctl, "tag", "ls", addr+"/team/app")); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("tags after artifact put = %v, want 1 and 2 (no referrers fallback tag)", got)
	}
}

// children lists the digests an index refers to, in order.
func children(t *testing.T, crane, ref string) []string {
	t.Helper()
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(testenv.Run(t, crane, "manifest", "--insecure", ref)), &idx); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range idx.Manifests {
		out = append(out, m.Digest)
	}
	return out
}
