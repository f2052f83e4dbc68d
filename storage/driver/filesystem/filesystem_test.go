package filesystem_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/drivertest"
	"github.com/berth-registry/berth/storage/driver/filesystem"
	"github.com/berth-registry/berth/storage/storagetest"
)

func TestConformance(t *testing.T) {
	// Every driver built for one test shares that test's root directory, as
	// two processes on one volume would.
	var mu sync.Mutex
	roots := map[*testing.T]string{}
	newDriver := func(t *testing.T) driver.Driver {
		mu.Lock()
		root, ok := roots[t]
		if !ok {
			root = t.TempDir()
			roots[t] = root
		}
		mu.Unlock()
		d, err := filesystem.New(filesystem.Params{RootDirectory: root, MaxThreads: 25})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	drivertest.Run(t, newDriver)
	t.Run("Maintenance", func(t *testing.T) { storagetest.Run(t, newDriver) })
}

func TestOpenDecodesParamsStrictly(t *testing.T) {
	root := t.TempDir()
	d, err := driver.Open(t.Context(), "filesystem", driver.Params{"rootdirectory": root, "maxthreads": "30"})
	if err != nil || d.Name() != "filesystem" {
		t.Fatalf("Open with string maxthreads = %v, %v", d, err)
	}
	for key, params := range map[string]driver.Params{
		"bogus":      {"rootdirectory": root, "bogus": 1},
		"maxthreads": {"rootdirectory": root, "maxthreads": "lots"},
	} {
		_, err := driver.Open(t.Context(), "filesystem", params)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Open(%v) = %v, want an error naming %q", params, err, key)
		}
	}
}

func newDriver(t *testing.T) (driver.Driver, string) {
	root := t.TempDir()
	d, err := filesystem.New(filesystem.Params{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	return driver.Wrap(d), root
}

func TestFilesLieWhereTheirPathsSay(t *testing.T) {
	d, root := newDriver(t)
	if err := driver.PutContent(t.Context(), d, "/docker/registry/v2/blobs/x", []byte("blob")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docker", "registry", "v2", "blobs", "x"))
	if err != nil || string(b) != "blob" {
		t.Fatalf("file on disk = %q, %v", b, err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "docker", "registry", "v2", "blobs"))
	if len(entries) != 1 {
		t.Fatalf("PutContent left %d entries, want only the file", len(entries))
	}
}

func TestUnfinishedWriteIsASiblingPartialFile(t *testing.T) {
	d, root := newDriver(t)
	ctx := t.Context()
	w, err := d.Writer(ctx, "/up/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("part")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(root, "up", "data.partial~")
	if b, err := os.ReadFile(partial); err != nil || string(b) != "part" {
		t.Fatalf("partial file = %q, %v", b, err)
	}
	w, err = d.Writer(ctx, "/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partial); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial file still there after Commit: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "up", "data")); err != nil || string(b) != "part" {
		t.Fatalf("committed file = %q, %v", b, err)
	}
}

func TestReadersAreFilesForSendfile(t *testing.T) {
	d, _ := newDriver(t)
	ctx := t.Context()
	if err := driver.PutContent(ctx, d, "/f", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	r, err := d.Reader(ctx, "/f", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*os.File); !ok {
		t.Errorf("Reader is a %T, not an *os.File", r)
	}
	if b, _ := io.ReadAll(r); string(b) != "456789" {
		t.Errorf("Reader from 4 = %q", b)
	}
	f, err := d.(driver.FileOpener).OpenFile(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); string(b) != "0123456789" {
		t.Errorf("OpenFile = %q", b)
	}
	_, err = d.(driver.FileOpener).OpenFile(ctx, "/missing")
	if !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("OpenFile(/missing) = %v, want ErrNotFound", err)
	}
}

func TestDeleteRootKeepsTheRootDirectory(t *testing.T) {
	d, root := newDriver(t)
	if err := driver.PutContent(t.Context(), d, "/a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(t.Context(), "/"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 0 {
		t.Fatalf("root after Delete(/) = %v, %v; want an empty directory", entries, err)
	}
}

// writeShared writes b with w and closes it with CloseShared.
func writeShared(t *testing.T, w driver.FileWriter, b string) {
	t.Helper()
	if _, err := w.Write([]byte(b)); err != nil {
		t.Fatal(err)
	}
	if err := driver.CloseShared(w); err != nil {
		t.Fatal(err)
	}
}

// TestSharedWriteIsContinuedInPlace: a write closed with CloseShared shows
// its bytes at the path itself, where CNCF Distribution's driver appends;
// what is appended there is what Writer(path, true) resumes, and the
// commit publishes the whole. A fresh write at the path never truncates
// the shared file, and committing leaves one name.
func TestSharedWriteIsContinuedInPlace(t *testing.T) {
	d, root := newDriver(t)
	ctx := t.Context()
	const p = "/uploads/x/data"
	full := filepath.Join(root, filepath.FromSlash(p))
	w, err := d.Writer(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeShared(t, w, "berth,")
	if b, err := os.ReadFile(full); err != nil || string(b) != "berth," {
		t.Fatalf("path after CloseShared: %q, %v", b, err)
	}
	// Distribution appends in place.
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("distribution,"); err != nil {
		t.Fatal(err)
	}
	f.Close()

	w, err = d.Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len("berth,distribution,")) {
		t.Fatalf("resumed at %d, want what both wrote", w.Size())
	}
	writeShared(t, w, "berth")
	if b, _ := os.ReadFile(full); string(b) != "berth,distribution,berth" {
		t.Fatalf("path holds %q", b)
	}

	// A new write at the path (a session taken over) starts empty and
	// leaves the shared bytes where they are.
	fresh, err := d.Writer(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Size() != 0 {
		t.Fatalf("fresh write at %d", fresh.Size())
	}
	if b, _ := os.ReadFile(full); string(b) != "berth,distribution,berth" {
		t.Fatalf("a fresh write changed the shared file: %q", b)
	}
	writeShared(t, fresh, "new")
	if b, _ := os.ReadFile(full); string(b) != "new" {
		t.Fatalf("path after the fresh write's CloseShared: %q", b)
	}

	w, err = d.Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := driver.CommitTo(ctx, d, w, p, "/blobs/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(full); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the session's shared name outlived the commit: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "blobs", "x")); string(b) != "new" {
		t.Fatalf("committed %q", b)
	}

	// Commit in place, of a shared write, leaves the file under its
	// name only.
	w, err = d.Writer(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeShared(t, w, "again")
	w, err = d.Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(full); string(b) != "again" {
		t.Fatalf("committed in place: %q", b)
	}
	if m, _ := filepath.Glob(full + "*~"); len(m) != 0 {
		t.Fatalf("left behind: %v", m)
	}
}
