package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
)

// TestCraneScenario drives crane through what users do with it: push,
// pull, copy between repositories (a cross-repository mount), list,
// catalog, digest, mutate and delete.
func TestCraneScenario(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	addr, proc := testenv.StartBerthProcess(t, filesystemConfig(t.TempDir()))
	dir := t.TempDir()
	src := addr + "/team/app:1.0"

	testenv.Run(t, crane, "append", "--insecure", "-f", writeLayer(t, dir, "one"), "-f", writeLayer(t, dir, "two"), "-t", src)
	pushed := strings.TrimSpace(testenv.Run(t, crane, "digest", "--insecure", src))

	tarball := filepath.Join(dir, "app.tar")
	testenv.Run(t, crane, "pull", "--insecure", src, tarball)
	if fi, err := os.Stat(tarball); err != nil || fi.Size() == 0 {
		t.Fatalf("crane pull wrote nothing: %v", err)
	}

	dst := addr + "/other/app:1.0"
	testenv.Run(t, crane, "copy", "--insecure", src, dst)
	if got := strings.TrimSpace(testenv.Run(t, crane, "digest", "--insecure", dst)); got != pushed {
		t.Errorf("copy has digest %s, want %s", got, pushed)
	}
	// crane mounts the blobs from the source repository instead of
	// uploading them again: in Berth's request log, a mount is a POST that
	// is answered 201, and no upload is completed with a PUT. The log is
	// read once the copy's manifest PUT, its last request, is in it.
	log := proc.WaitLogLine(t, 5*time.Second, "method=PUT", "route=/v2/<name>/manifests/<reference>", "repo=other/app")
	var mounts, uploads int
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "repo=other/app") || !strings.Contains(line, "route=/v2/<name>/blobs/uploads/") {
			continue
		}
		switch {
		case strings.Contains(line, "method=POST") && strings.Contains(line, "status=201"):
			mounts++
		case strings.Contains(line, "method=PUT"):
			uploads++
		}
	}
	if mounts != 3 || uploads != 0 { // two layers and the config
		t.Errorf("copy into other/app: %d mounts and %d uploads, want 3 and 0:\n%s", mounts, uploads, log)
	}

	if got := strings.Fields(testenv.Run(t, crane, "catalog", "--insecure", addr)); !slices.Equal(got, []string{"other/app", "team/app"}) {
		t.Errorf("catalog = %v", got)
	}
	testenv.Run(t, crane, "tag", "--insecure", src, "latest")
	if got := strings.Fields(testenv.Run(t, crane, "ls", "--insecure", addr+"/team/app")); !slices.Equal(got, []string{"1.0", "latest"}) {
		t.Errorf("tags = %v", got)
	}

	mutated := addr + "/team/app:labelled"
	testenv.Run(t, crane, "mutate", "--insecure", "--label", "org.example.team=platform", "-t", mutated, src)
	var cfg struct {
		Config struct{ Labels map[string]string } `json:"config"`
	}
	if err := json.Unmarshal([]byte(testenv.Run(t, crane, "config", "--insecure", mutated)), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Labels["org.example.team"] != "platform" {
		t.Errorf("mutated config labels = %v", cfg.Config.Labels)
	}

	testenv.Run(t, crane, "delete", "--insecure", addr+"/team/app@"+pushed)
	if err := testenv.RunQuiet(crane, "manifest", "--insecure", src); err == nil {
		t.Error("the deleted manifest is still served by tag")
	}
	testenv.Run(t, crane, "validate", "--insecure", "--remote", dst) // the copy is untouched
}

// TestOrasArtifactAndReferrers pushes an artifact with an artifact type,
// attaches a referrer to it, finds it through the referrers API with
// oras discover, and pulls the artifact back byte for byte.
func TestOrasArtifactAndReferrers(t *testing.T) {
	oras := testenv.Tool(t, "oras")
	addr := testenv.StartBerth(t, filesystemConfig(t.TempDir()))
	t.Setenv("HOME", t.TempDir()) // oras keeps credentials and caches there
	dir := t.TempDir()
	content := []byte(`{"spdxVersion":"SPDX-2.3","name":"app"}`)
	if err := os.WriteFile(filepath.Join(dir, "sbom.json"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sig.txt"), []byte("signed"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := addr + "/team/sbom:1"
	testenv.RunIn(t, dir, oras, "push", "--plain-http", "--artifact-type", "application/spdx+json", ref, "sbom.json:application/spdx+json")
	testenv.RunIn(t, dir, oras, "attach", "--plain-http", "--artifact-type", "application/vnd.example.signature", ref, "sig.txt")

	var found struct {
		Referrers []struct {
			ArtifactType string `json:"artifactType"`
			Digest       string `json:"digest"`
		} `json:"referrers"`
	}
	out := testenv.Run(t, oras, "discover", "--plain-http", "--format", "json", ref)
	if err := json.Unmarshal([]byte(out), &found); err != nil {
		t.Fatalf("oras discover output %q: %v", out, err)
	}
	if len(found.Referrers) != 1 || found.Referrers[0].ArtifactType != "application/vnd.example.signature" {
		t.Fatalf("referrers = %+v, want the one signature", found.Referrers)
	}
	// oras falls back to a sha256-<digest> tag on registries without the
	// referrers API, and discover finds that tag just as well: only the
	// API itself and the absence of the tag show Berth served it.
	subject := strings.TrimSpace(testenv.Run(t, oras, "resolve", "--plain-http", ref))
	if got := referrers(t, addr, "team/sbom", subject); len(got) != 1 || got[0] != found.Referrers[0].Digest {
		t.Errorf("referrers API lists %v, want [%s]", got, found.Referrers[0].Digest)
	}
	if tags := strings.Fields(testenv.Run(t, oras, "repo", "tags", "--plain-http", addr+"/team/sbom")); !slices.Equal(tags, []string{"1"}) {
		t.Errorf("tags = %v, want only 1 (no referrers fallback tag)", tags)
	}

	back := t.TempDir()
	testenv.RunIn(t, back, oras, "pull", "--plain-http", ref)
	got, err := os.ReadFile(filepath.Join(back, "sbom.json"))
	if err != nil || string(got) != string(content) {
		t.Fatalf("pulled %q (%v), want %q", got, err, content)
	}
}

// referrers asks Berth's referrers API which manifests refer to subject in
// repo, and returns their digests.
func referrers(t *testing.T, addr, repo, subject string) []string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v2/" + repo + "/referrers/" + subject)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET referrers of %s: %s", subject, resp.Status)
	}
	var idx struct {
		MediaType string                    `json:"mediaType"`
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil {
		t.Fatal(err)
	}
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("referrers response has media type %q", idx.MediaType)
	}
	var out []string
	for _, m := range idx.Manifests {
		out = append(out, m.Digest)
	}
	return out
}
