package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
)

// gcConfig writes a config over a filesystem root and returns its path.
func gcConfig(t *testing.T, root string, readOnly bool) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yml")
	ro := "false"
	if readOnly {
		ro = "true"
	}
	writeFile(t, p, "version: 0.1\nlog: {level: error}\nstorage:\n  filesystem:\n    rootdirectory: "+root+
		"\n  maintenance:\n    readonly: {enabled: "+ro+"}\n")
	return p
}

func runGC(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"garbage-collect"}, args...), &out, &errb, nil)
	return code, out.String(), errb.String()
}

func TestGarbageCollectRefusesUnlessReadOnlyOnlineOrDryRun(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name     string
		readOnly bool
		flags    []string
		code     int
	}{
		{"writable registry", false, nil, 1},
		{"writable registry dry run", false, []string{"--dry-run"}, 0},
		{"read-only registry", true, nil, 0},
		{"online", false, []string{"--online"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := gcConfig(t, root, tt.readOnly)
			code, stdout, stderr := runGC(t, append([]string{cfg}, tt.flags...)...)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			if tt.code != 0 && !strings.Contains(stderr, "storage.maintenance.readonly.enabled") {
				t.Errorf("refusal does not name the setting: %s", stderr)
			}
			if slices.Contains(tt.flags, "--dry-run") && !tt.readOnly && !strings.Contains(stderr, "may change while this runs") {
				t.Errorf("a dry run on a live registry does not say the registry may change: %s", stderr)
			}
			if tt.code == 0 && !strings.Contains(stdout, " 0 blobs, ") {
				t.Errorf("summary missing: %s", stdout)
			}
		})
	}
}

// copyTree copies the directory src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// openRoot opens the content model over a filesystem root.
func openRoot(t *testing.T, root string) *storage.Registry {
	t.Helper()
	d, err := filesystem.New(filesystem.Params{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	return storage.New(d, storage.Options{DeleteEnabled: true}, slog.New(slog.DiscardHandler))
}

// pullEveryTag GETs, through the HTTP API, every tag's manifest and
// every blob and manifest it references, recursively, checking digests.
// It returns the number of tags pulled.
func pullEveryTag(t *testing.T, reg *storage.Registry) int {
	t.Helper()
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(reg, registry.Options{}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	get := func(p string, accept bool) []byte {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		if accept {
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "+
				"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, b)
			return nil
		}
		return b
	}
	var pullManifest func(name, ref string)
	pullManifest = func(name, ref string) {
		b := get("/v2/"+name+"/manifests/"+ref, true)
		if b == nil {
			return
		}
		if strings.Contains(ref, ":") && digest.FromBytes(b).String() != ref {
			t.Errorf("manifest %s@%s has digest %s", name, ref, digest.FromBytes(b))
		}
		var doc struct {
			Config    *struct{ Digest digest.Digest }  `json:"config"`
			Layers    []struct{ Digest digest.Digest } `json:"layers"`
			Manifests []struct{ Digest digest.Digest } `json:"manifests"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Errorf("manifest %s@%s: %v", name, ref, err)
			return
		}
		blobs := doc.Layers
		if doc.Config != nil {
			blobs = append(blobs, *doc.Config)
		}
		for _, l := range blobs {
			if got := get("/v2/"+name+"/blobs/"+l.Digest.String(), false); got != nil && digest.FromBytes(got) != l.Digest {
				t.Errorf("blob %s of %s@%s has the wrong content", l.Digest, name, ref)
			}
		}
		for _, c := range doc.Manifests {
			pullManifest(name, c.Digest.String())
		}
	}
	repos, err := reg.Catalog(ctx, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range repos {
		tags, _, err := reg.Repository(name).Tags(ctx, 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			pullManifest(name, tag)
			n++
		}
	}
	return n
}

func TestGarbageCollectLeavesDistributionTreePullable(t *testing.T) {
	for _, flags := range [][]string{nil, {"--delete-untagged"}} {
		t.Run(strings.Join(append([]string{"gc"}, flags...), " "), func(t *testing.T) {
			root := t.TempDir()
			copyTree(t, filepath.Join("..", "..", "storage", "testdata", "distribution-v3"), root)
			before := pullEveryTag(t, openRoot(t, root))
			if before == 0 {
				t.Fatal("the test tree has no tags")
			}
			// An orphan blob, as a deleted image leaves behind.
			reg := openRoot(t, root)
			u, err := reg.Repository("hello").NewUpload(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			orphan := []byte("nothing references this")
			if _, err := u.Write(orphan); err != nil {
				t.Fatal(err)
			}
			if _, err := u.Commit(context.Background(), digest.FromBytes(orphan)); err != nil {
				t.Fatal(err)
			}

			cfg := gcConfig(t, root, true)
			code, dry, stderr := runGC(t, append([]string{cfg, "--dry-run"}, flags...)...)
			if code != 0 {
				t.Fatalf("dry run: exit %d: %s", code, stderr)
			}
			wantLine := "would delete blob " + digest.FromBytes(orphan).String() + " (23 bytes)"
			if !strings.Contains(dry, wantLine) {
				t.Errorf("dry run output lacks %q:\n%s", wantLine, dry)
			}
			code, out, stderr := runGC(t, append([]string{cfg}, flags...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if strings.Count(dry, "\n") != strings.Count(out, "\n") {
				t.Errorf("the dry run and the run differ:\n%s\n---\n%s", dry, out)
			}
			if !strings.Contains(out, "deleted blob "+digest.FromBytes(orphan).String()) {
				t.Errorf("output lacks the orphan:\n%s", out)
			}
			if after := pullEveryTag(t, openRoot(t, root)); after != before {
				t.Errorf("%d tags pullable after gc, %d before", after, before)
			}
			hex := digest.FromBytes(orphan).Encoded()
			if _, err := os.Stat(filepath.Join(root, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")); err == nil {
				t.Error("the orphan blob is still stored")
			}
		})
	}
}

// TestGarbageCollectDryRunOnALiveRegistryChangesNothing runs the dry run
// as Distribution's docs write it, on a registry that is not read-only
// and has something to collect: not a byte of the storage changes.
func TestGarbageCollectDryRunOnALiveRegistryChangesNothing(t *testing.T) {
	root := t.TempDir()
	copyTree(t, filepath.Join("..", "..", "storage", "testdata", "distribution-v3"), root)
	u, err := openRoot(t, root).Repository("hello").NewUpload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	orphan := []byte("an orphan for the dry run")
	if _, err := u.Write(orphan); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(context.Background(), digest.FromBytes(orphan)); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, root)
	for _, flags := range [][]string{{"--dry-run"}, {"-m", "--delete-untagged"}, {"--dry-run", "--online"}} {
		code, out, stderr := runGC(t, append([]string{gcConfig(t, root, false)}, flags...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", flags, code, stderr)
		}
		// --online keeps blobs younger than the grace period: the orphan too.
		if !slices.Contains(flags, "--online") && !strings.Contains(out, "would delete blob "+digest.FromBytes(orphan).String()) {
			t.Errorf("%v: output lacks the orphan:\n%s", flags, out)
		}
		if after := treeState(t, root); !maps.Equal(before, after) {
			t.Errorf("%v: the dry run changed the storage:\nbefore %v\nafter  %v", flags, before, after)
		}
	}
}

// treeState maps every path under root to its size, mode and mtime and,
// for files, its content.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		s := fmt.Sprintf("%d %v %d", fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		if !fi.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += " " + digest.FromBytes(b).String()
		}
		state[p] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}
