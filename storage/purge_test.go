package storage

import (
	"context"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// purgeFixture holds an old and a fresh upload session (each with data and
// startedat), and an old and a fresh write left unfinished by a request.
type purgeFixture struct {
	reg                  *Registry
	oldUpload, newUpload string
	partial1, partial2   string
}

func buildPurgeFixture(t *testing.T, open func() driver.Driver) purgeFixture {
	t.Helper()
	ctx := context.Background()
	reg := newRegistry(open, Options{})
	repo := reg.Repository("app")
	session := func() string {
		u, err := repo.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write([]byte("some bytes")); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return uploadDir("app", u.ID())
	}
	f := purgeFixture{reg: reg, oldUpload: session(), newUpload: session()}
	// The old session's startedat says it began ten days ago.
	old := time.Now().Add(-240 * time.Hour).UTC().Format(time.RFC3339)
	if err := driver.PutContent(ctx, reg.driver, f.oldUpload+"/startedat", []byte(old)); err != nil {
		t.Fatal(err)
	}
	// Two writes left unfinished by requests that never came back, with
	// no startedat: the driver is all that knows of them.
	f.partial1 = uploadDataPath("app", newUploadID())
	f.partial2 = uploadDataPath("app", newUploadID())
	for _, p := range []string{f.partial1, f.partial2} {
		fw, err := reg.driver.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write([]byte("partial")); err != nil {
			t.Fatal(err)
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func unfinishedPaths(t *testing.T, reg *Registry) map[string]time.Time {
	t.Helper()
	m, err := reg.driver.(driver.UploadLister).Unfinished(context.Background(), repositoriesRoot)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func exists(t *testing.T, reg *Registry, p string) bool {
	t.Helper()
	_, err := reg.driver.Stat(context.Background(), p)
	if err != nil && !isNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestPurgeUploadsRemovesOnlyThoseOlderThanAge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		f := buildPurgeFixture(t, open)
		// Only the session whose startedat is ten days old is older than
		// a week; the unfinished writes were made just now.
		res, err := f.reg.PurgeUploads(context.Background(), PurgeOptions{Age: 168 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if res.Uploads != 1 || res.Unfinished != 0 {
			t.Errorf("result = %+v, want 1 upload, 0 unfinished writes", res)
		}
		if exists(t, f.reg, f.oldUpload) {
			t.Errorf("old upload %s survived", f.oldUpload)
		}
		if !exists(t, f.reg, f.newUpload+"/startedat") {
			t.Errorf("fresh upload %s was removed", f.newUpload)
		}
		for _, p := range []string{f.partial1, f.partial2} {
			if _, ok := unfinishedPaths(t, f.reg)[p]; !ok {
				t.Errorf("fresh unfinished write %s was cancelled", p)
			}
		}

		// A clock a day ahead makes everything left older than an hour.
		later := func() time.Time { return time.Now().Add(24 * time.Hour) }
		res, err = f.reg.PurgeUploads(context.Background(), PurgeOptions{Age: time.Hour, Now: later})
		if err != nil {
			t.Fatal(err)
		}
		if res.Uploads != 1 || res.Unfinished < 2 {
			t.Errorf("result = %+v, want 1 upload and at least the 2 unfinished writes", res)
		}
		if got := unfinishedPaths(t, f.reg); len(got) != 0 {
			t.Errorf("unfinished writes left: %v", got)
		}
	})
}

func TestPurgeUploadsDryRunRemovesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		f := buildPurgeFixture(t, open)
		before := tree(t, f.reg.driver)
		later := func() time.Time { return time.Now().Add(24 * time.Hour) }
		res, err := f.reg.PurgeUploads(context.Background(), PurgeOptions{Age: time.Hour, DryRun: true, Now: later})
		if err != nil {
			t.Fatal(err)
		}
		if res.Uploads != 2 || res.Unfinished < 2 {
			t.Errorf("result = %+v, want 2 uploads and at least 2 unfinished writes reported", res)
		}
		if after := tree(t, f.reg.driver); len(after) != len(before) {
			t.Errorf("dry run changed the tree: %d files, then %d", len(before), len(after))
		}
		for _, p := range []string{f.partial1, f.partial2} {
			if _, ok := unfinishedPaths(t, f.reg)[p]; !ok {
				t.Errorf("unfinished write %s was cancelled in a dry run", p)
			}
		}
	})
}

// TestPurgeTakesTurnsAcrossInstances: instances on one store purging at
// the same interval do not each list the store: a purge another instance
// finished less than half an interval ago is skipped; a dry run counts for
// nothing.
func TestPurgeTakesTurnsAcrossInstances(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		a, b, clock := twoInstances(t, open)
		opts := PurgeOptions{Age: time.Hour, Every: 24 * time.Hour, Now: clock.now}
		dry := opts
		dry.DryRun = true
		steps := []struct {
			name        string
			reg         *Registry
			opts        PurgeOptions
			advance     time.Duration
			wantSkipped bool
		}{
			{"a dry run on A", a, dry, 0, false},
			{"B after a dry run", b, opts, 0, false},
			{"A just after B", a, opts, time.Hour, true},
			{"A a half interval after B", a, opts, 11 * time.Hour, false},
			{"B at once after A", b, opts, 0, true},
		}
		for _, s := range steps {
			clock.advance(s.advance)
			res, err := s.reg.PurgeUploads(ctx, s.opts)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if res.Skipped != s.wantSkipped {
				t.Errorf("%s: skipped = %v, want %v", s.name, res.Skipped, s.wantSkipped)
			}
		}
	})
}
