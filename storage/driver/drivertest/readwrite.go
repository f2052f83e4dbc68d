package drivertest

import (
	"errors"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

func (s *suite) readWriteTests() map[string]func(*testing.T) {
	return map[string]func(*testing.T){
		"PutContentThenGetContent":          s.testPutGetContent,
		"NothingVisibleBeforeCommit":        s.testNothingVisibleBeforeCommit,
		"CommitThenStat":                    s.testCommitThenStat,
		"WriterReplacesCommittedFile":       s.testWriterReplacesCommitted,
		"ResumeOnAnotherInstance":           s.testResumeOnAnotherInstance,
		"AppendWithoutUnfinishedIsNotFound": s.testAppendWithoutUnfinished,
		"FreshWriterDiscardsUnfinished":     s.testFreshWriterDiscardsUnfinished,
		"CancelLeavesNothing":               s.testCancelLeavesNothing,
		"WriterUnusableAfterCommit":         s.testWriterUnusableAfterCommit,
		"UnfinishedWritesAreListed":         s.testUnfinishedListed,
		"PutScratchStoresLikePutContent":    s.testPutScratch,
		"CommitToAnotherPath":               s.testCommitTo,
	}
}

func (s *suite) testPutGetContent(t *testing.T) {
	d := s.driver(t)
	for _, content := range []string{"first version", "short", ""} {
		put(t, d, "/a/b/c", content)
		if got := get(t, d, "/a/b/c"); got != content {
			t.Fatalf("GetContent = %q, want %q", got, content)
		}
		fi, err := d.Stat(t.Context(), "/a/b/c")
		if err != nil || fi.Size != int64(len(content)) || fi.IsDir {
			t.Fatalf("Stat = %+v, %v; want a file of %d bytes", fi, err, len(content))
		}
	}
}

func (s *suite) testPutScratch(t *testing.T) {
	d := s.driver(t)
	for _, content := range []string{"first version", "short", ""} {
		if err := driver.PutScratch(t.Context(), d, "/scratch/new/dir/state", []byte(content)); err != nil {
			t.Fatalf("PutScratch: %v", err)
		}
		if got := get(t, d, "/scratch/new/dir/state"); got != content {
			t.Fatalf("GetContent = %q, want %q", got, content)
		}
	}
	// Nothing else is visible: no temporary file beside it.
	if got := list(t, d, "/scratch/new/dir"); len(got) != 1 || got[0] != "/scratch/new/dir/state" {
		t.Fatalf("List = %v, want only the file", got)
	}
}

func (s *suite) testCommitTo(t *testing.T) {
	ctx := t.Context()
	d := s.driver(t)
	leave(t, d, "/session/id/data", "first part, ")
	w, err := d.Writer(ctx, "/session/id/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("second part")); err != nil {
		t.Fatal(err)
	}
	// A directory that does not exist yet, as for a new blob.
	if err := driver.CommitTo(ctx, d, w, "/session/id/data", "/blobs/new/dir/data"); err != nil {
		t.Fatalf("CommitTo: %v", err)
	}
	if got := get(t, d, "/blobs/new/dir/data"); got != "first part, second part" {
		t.Fatalf("committed content = %q", got)
	}
	wantNotFound(t, d, "/session/id/data")
	if _, err := d.Writer(ctx, "/session/id/data", true); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("unfinished write left after CommitTo: %v", err)
	}
}

func (s *suite) testNothingVisibleBeforeCommit(t *testing.T) {
	d := s.driver(t)
	ctx := t.Context()
	w, err := d.Writer(ctx, "/v/file", false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel(ctx)
	if _, err := w.Write([]byte("pending")); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, d, "/v/file")
	_, err = d.Reader(ctx, "/v/file", 0)
	wantErr(t, d, err, driver.ErrNotFound, "Reader before Commit")
}

func (s *suite) testCommitThenStat(t *testing.T) {
	d := s.driver(t)
	ctx := t.Context()
	w, err := d.Writer(ctx, "/cs/file", false)
	if err != nil {
		t.Fatal(err)
	}
	for i, chunk := range []string{"abc", "", "defgh"} {
		if n, err := w.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write %d = %d, %v", i, n, err)
		}
	}
	if w.Size() != 8 {
		t.Fatalf("Size before Commit = %d, want 8", w.Size())
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	fi, err := d.Stat(ctx, "/cs/file")
	if err != nil || fi.Size != 8 || fi.IsDir || fi.Path != "/cs/file" {
		t.Fatalf("Stat after Commit = %+v, %v", fi, err)
	}
	if got := get(t, d, "/cs/file"); got != "abcdefgh" {
		t.Fatalf("content = %q", got)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit = %v, want nil", err)
	}
}

func (s *suite) testWriterReplacesCommitted(t *testing.T) {
	d := s.driver(t)
	write(t, d, "/r/file", "version one, long")
	write(t, d, "/r/file", "v2")
	if got := get(t, d, "/r/file"); got != "v2" {
		t.Fatalf("content = %q, want v2", got)
	}
}

func (s *suite) testResumeOnAnotherInstance(t *testing.T) {
	ctx := t.Context()
	leave(t, s.driver(t), "/up/data", "hello ")

	d2 := s.driver(t)
	w, err := d2.Writer(ctx, "/up/data", true)
	if err != nil {
		t.Fatalf("resume on a new instance: %v", err)
	}
	if w.Size() != 6 {
		t.Fatalf("resumed Size = %d, want 6", w.Size())
	}
	if _, err := w.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if w.Size() != 11 {
		t.Fatalf("Size after Write = %d, want 11", w.Size())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The registry reports Size after Close as the upload's Range.
	if w.Size() != 11 {
		t.Fatalf("Size after Close = %d, want 11", w.Size())
	}
	wantNotFound(t, d2, "/up/data")

	d3 := s.driver(t)
	w, err = d3.Writer(ctx, "/up/data", true)
	if err != nil {
		t.Fatalf("second resume: %v", err)
	}
	if w.Size() != 11 {
		t.Fatalf("second resumed Size = %d, want 11", w.Size())
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s.driver(t), "/up/data"); got != "hello world" {
		t.Fatalf("content = %q, want %q", got, "hello world")
	}
}

func (s *suite) testAppendWithoutUnfinished(t *testing.T) {
	d := s.driver(t)
	_, err := d.Writer(t.Context(), "/none/file", true)
	wantErr(t, d, err, driver.ErrNotFound, "append with nothing written")

	write(t, d, "/none/file", "committed")
	_, err = d.Writer(t.Context(), "/none/file", true)
	wantErr(t, d, err, driver.ErrNotFound, "append to a committed file with nothing unfinished")
	if got := get(t, d, "/none/file"); got != "committed" {
		t.Fatalf("committed content changed to %q", got)
	}
}

func (s *suite) testFreshWriterDiscardsUnfinished(t *testing.T) {
	d := s.driver(t)
	leave(t, d, "/f/file", "old and longer")
	w, err := d.Writer(t.Context(), "/f/file", false)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 0 {
		t.Fatalf("fresh writer Size = %d, want 0", w.Size())
	}
	if _, err := w.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "/f/file"); got != "new" {
		t.Fatalf("content = %q, want new", got)
	}
	_, err = d.Writer(t.Context(), "/f/file", true)
	wantErr(t, d, err, driver.ErrNotFound, "append after Commit")
}

func (s *suite) testCancelLeavesNothing(t *testing.T) {
	ctx := t.Context()
	for _, resumed := range []bool{false, true} {
		d := s.driver(t)
		if resumed {
			leave(t, d, "/cancel/deep/file", "abandoned")
		}
		w, err := d.Writer(ctx, "/cancel/deep/file", resumed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		if err := w.Cancel(ctx); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		wantNotFound(t, d, "/cancel/deep/file")
		wantNotFound(t, d, "/cancel")
		_, err = s.driver(t).Writer(ctx, "/cancel/deep/file", true)
		wantErr(t, d, err, driver.ErrNotFound, "append after Cancel")
		if u, ok := unwrap(d).(driver.UploadLister); ok {
			m, err := u.Unfinished(ctx, "/")
			if err != nil || len(m) != 0 {
				t.Errorf("Unfinished after Cancel = %v, %v; want none", m, err)
			}
		}
	}
}

func (s *suite) testWriterUnusableAfterCommit(t *testing.T) {
	d := s.driver(t)
	ctx := t.Context()
	w, err := d.Writer(ctx, "/done/file", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Commit(ctx); err == nil {
		t.Error("second Commit succeeded")
	}
	if got := get(t, d, "/done/file"); got != "x" {
		t.Fatalf("content = %q, want x", got)
	}
}

// testUnfinishedListed runs only for drivers that implement UploadLister.
func (s *suite) testUnfinishedListed(t *testing.T) {
	d := s.driver(t)
	ul, ok := unwrap(d).(driver.UploadLister)
	if !ok {
		t.Skip("driver is not an UploadLister")
	}
	ctx := t.Context()
	leave(t, d, "/ul/a/data", "part")
	leave(t, d, "/other/data", "part")
	write(t, d, "/ul/b/data", "whole")
	m, err := ul.Unfinished(ctx, "/ul")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || m["/ul/a/data"].IsZero() {
		t.Fatalf("Unfinished(/ul) = %v, want only /ul/a/data with its time", m)
	}
}
