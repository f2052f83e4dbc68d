package filesystem

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// TestSyncDirsReportsAFailureAmongOthers: the syncs run at once, and one
// that fails (a directory pruned meanwhile) fails the commit however
// many others succeed, wherever it stands in the list.
func TestSyncDirsReportsAFailureAmongOthers(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	gone := filepath.Join(root, "gone")
	d := &Driver{root: root, sem: make(chan struct{}, minMaxThreads)}
	if err := d.syncDirs([]string{a, root, b}); err != nil {
		t.Fatalf("syncDirs of three directories: %v", err)
	}
	for _, dirs := range [][]string{{gone}, {gone, a, b}, {a, gone, b}, {a, b, gone}} {
		err := d.syncDirs(dirs)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), gone) {
			t.Errorf("syncDirs(%q) = %v, want the missing directory's error", dirs, err)
		}
	}
}

// TestTemporaryFilesAreHiddenAndUnique: createTemp names its files as
// os.CreateTemp did with the pattern NAME.*.tmp~, which List hides and
// the purge of leftovers recognises, and never reuses one.
func TestTemporaryFilesAreHiddenAndUnique(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	for range 50 {
		f, err := createTemp(dir, "link")
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f.Name())
		f.Close()
		if !strings.HasPrefix(name, "link.") || !strings.HasSuffix(name, ".tmp~") || seen[name] {
			t.Fatalf("temporary file %q: want link.*.tmp~, new each time", name)
		}
		seen[name] = true
	}
	if _, err := createTemp(filepath.Join(dir, "missing"), "link"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("createTemp in a missing directory: %v, want not exist (inDir makes it and retries)", err)
	}
}

// TestSyncDirsKeepsToMaxThreads: the syncs beyond the caller's own run on
// goroutines only with a slot of their own, and with none free they run in
// turn rather than wait (which would deadlock commits holding every slot).
func TestSyncDirsKeepsToMaxThreads(t *testing.T) {
	root := t.TempDir()
	var dirs []string
	for _, n := range []string{"a", "b", "c", "d"} {
		dirs = append(dirs, filepath.Join(root, n))
		if err := os.Mkdir(dirs[len(dirs)-1], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := &Driver{root: root, sem: make(chan struct{}, 2)}
	d.sem <- struct{}{} // the caller's slot
	d.sem <- struct{}{} // another call's: none left
	done := make(chan error)
	go func() { done <- d.syncDirs(dirs) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("syncDirs waited for a slot while its caller held one")
	}
	if n := len(d.sem); n != 2 {
		t.Errorf("%d slots held after syncDirs, want the 2 held before", n)
	}
}

// TestDirsToSyncOnce: a directory made twice (pruned and made again
// between the tries of inDir) is synced once.
func TestDirsToSyncOnce(t *testing.T) {
	got := dirsToSync("/r/a/b", []string{"/r/a", "/r/a/b", "/r/a", "/r/a/b"})
	if want := []string{"/r/a/b", "/r", "/r/a"}; !slices.Equal(got, want) {
		t.Errorf("dirsToSync = %q, want %q", got, want)
	}
}

// TestRemoveAllRemovesWhatIsThere: removeAll takes a file, a link (not
// what it points to) or a whole tree, and tells a path with nothing there
// from one it removed, as Delete must.
func TestRemoveAllRemovesWhatIsThere(t *testing.T) {
	root := t.TempDir()
	kept := filepath.Join(root, "kept")
	mustWrite(t, filepath.Join(kept, "file"))
	for _, tc := range []struct {
		name string
		make func(p string)
	}{
		{"file", func(p string) { mustWrite(t, p) }},
		{"empty directory", func(p string) { mustMkdir(t, p) }},
		{"link to a directory", func(p string) {
			if err := os.Symlink(kept, p); err != nil {
				t.Fatal(err)
			}
		}},
		{"upload session", func(p string) {
			mustWrite(t, filepath.Join(p, "startedat"))
			mustWrite(t, filepath.Join(p, "data.partial~"))
			mustWrite(t, filepath.Join(p, "lease", "000000000001"))
			mustWrite(t, filepath.Join(p, "lease", "000000000002"))
			mustWrite(t, filepath.Join(p, "hashstates", "sha256", "0"))
			mustMkdir(t, filepath.Join(p, "hashstates", "sha512"))
		}},
	} {
		p := filepath.Join(root, "x")
		tc.make(p)
		if err := removeAll(p); err != nil {
			t.Fatalf("%s: removeAll: %v", tc.name, err)
		}
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: still there after removeAll (%v)", tc.name, err)
		}
		if _, err := os.Stat(filepath.Join(kept, "file")); err != nil {
			t.Fatalf("%s: removeAll reached outside its path: %v", tc.name, err)
		}
	}
	for _, missing := range []string{filepath.Join(root, "missing"), filepath.Join(kept, "file", "below")} {
		if err := removeAll(missing); notFound(err) != driver.ErrNotFound {
			t.Errorf("removeAll(%s) = %v, want not found", missing, err)
		}
	}
}

func mustWrite(t *testing.T, p string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}
