package azure

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/partbuf/partbuftest"
)

// blobNames lists every blob in container, uncommitted ones included.
func blobNames(t *testing.T, f *fixture, name string) []string {
	t.Helper()
	pager := f.az.ContainerClient(name).NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Include: container.ListBlobsInclude{UncommittedBlobs: true},
	})
	var out []string
	for pager.More() {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatalf("list container: %v", err)
		}
		for _, b := range page.Segment.BlobItems {
			out = append(out, *b.Name)
		}
	}
	return out
}

// checkStored fails t unless the blob key reads back through a new driver
// as data and keeps no uncommitted block: a committed write leaves
// nothing staged behind it.
func checkStored(t *testing.T, f *fixture, cont, key string, data []byte) {
	t.Helper()
	if got := readAllFrom(t, f.driver(t, cont, nil), "/"+key); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes differing from the %d written", len(got), len(data))
	}
	if n := uncommittedBlocks(t, f, cont, key); n != 0 {
		t.Errorf("uncommitted blocks after Commit = %d, want 0", n)
	}
}

func uncommittedBlocks(t *testing.T, f *fixture, cont, blob string) int {
	t.Helper()
	resp, err := f.az.ContainerClient(cont).NewBlockBlobClient(blob).GetBlockList(t.Context(), blockblob.BlockListTypeUncommitted, nil)
	if isNotFound(err) {
		return 0
	}
	if err != nil {
		t.Fatalf("GetBlockList(%s): %v", blob, err)
	}
	return len(resp.UncommittedBlocks)
}

func mustWrite(t *testing.T, w driver.FileWriter, p []byte) {
	t.Helper()
	if n, err := w.Write(p); err != nil || n != len(p) {
		t.Fatalf("Write = %d, %v", n, err)
	}
}

func TestWriterStagesBlocksAsDataArrivesAndResumesOnNewInstance(t *testing.T) {
	f := newFixture(t)
	cont := f.az.Container(t)
	// One block at a time: the blocks are on the server when Write returns.
	extra := driver.Params{"chunksize": 1024, "writeconcurrency": 1}
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789abcdef"), 400) // 6400 bytes

	w, err := f.driver(t, cont, extra).Writer(ctx, "/up/data", false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, data[:2500])
	// Two full blocks are on the server before Close; the rest is in the
	// one buffer.
	if n := uncommittedBlocks(t, f, cont, "up/data"); n != 2 {
		t.Fatalf("uncommitted blocks before Close = %d, want 2", n)
	}
	if c := cap(w.(*writer).buf); c != 1024 {
		t.Fatalf("writer buffer capacity = %d, want one block of 1024", c)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := uncommittedBlocks(t, f, cont, "up/data"); n != 3 {
		t.Fatalf("uncommitted blocks after Close = %d, want 3 (the tail is a short block)", n)
	}

	// Two more instances each resume, write and close; the last commits.
	for _, part := range [][]byte{data[2500:2600], data[2600:]} {
		w, err := f.driver(t, cont, extra).Writer(ctx, "/up/data", true)
		if err != nil {
			t.Fatalf("resume: %v", err)
		}
		before := w.Size()
		mustWrite(t, w, part)
		if w.Size() != before+int64(len(part)) {
			t.Fatalf("Size = %d after writing %d onto %d", w.Size(), len(part), before)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	d := f.driver(t, cont, extra)
	w, err = d.Writer(ctx, "/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(data)) {
		t.Fatalf("resumed Size = %d, want %d", w.Size(), len(data))
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := d.Reader(ctx, "/up/data", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("committed content differs (%d bytes, %v), want %d bytes", len(got), err, len(data))
	}
	if n := uncommittedBlocks(t, f, cont, "up/data"); n != 0 {
		t.Fatalf("uncommitted blocks after Commit = %d, want 0", n)
	}
}

func TestUnfinishedWriteIsInvisibleToStatListAndWalk(t *testing.T) {
	f := newFixture(t)
	d := f.driver(t, f.az.Container(t), driver.Params{"chunksize": 1024})
	ctx := t.Context()
	w, err := d.Writer(ctx, "/hidden/dir/data", false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, make([]byte, 3000))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/hidden/dir/data", "/hidden/dir", "/hidden"} {
		if _, err := d.Stat(ctx, p); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Stat(%s) = %v, want ErrNotFound", p, err)
		}
	}
	if _, err := d.List(ctx, "/hidden"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("List(/hidden) = %v, want ErrNotFound", err)
	}
	if got, err := d.List(ctx, "/"); err != nil || len(got) != 0 {
		t.Errorf("List(/) = %v, %v; want empty", got, err)
	}
	var walked []string
	if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error { walked = append(walked, fi.Path); return nil }); err != nil || len(walked) != 0 {
		t.Errorf("Walk(/) = %v, %v; want nothing", walked, err)
	}
	m, err := d.Unfinished(ctx, "/hidden")
	if err != nil || len(m) != 1 || m["/hidden/dir/data"].IsZero() {
		t.Errorf("Unfinished(/hidden) = %v, %v; want /hidden/dir/data with its start", m, err)
	}
}

func TestCancelAndDeleteLeaveNoUncommittedBlob(t *testing.T) {
	f := newFixture(t)
	cont := f.az.Container(t)
	ctx := t.Context()
	cases := []struct {
		name string
		end  func(context.Context, *Driver, driver.FileWriter) error
	}{
		{"Cancel", func(ctx context.Context, _ *Driver, w driver.FileWriter) error { return w.Cancel(ctx) }},
		{"CancelAfterResume", func(ctx context.Context, d *Driver, w driver.FileWriter) error {
			if err := w.Close(); err != nil {
				return err
			}
			w2, err := d.Writer(ctx, "/c/u/data", true)
			if err != nil {
				return err
			}
			return w2.Cancel(ctx)
		}},
		{"DeleteDirectory", func(ctx context.Context, d *Driver, w driver.FileWriter) error {
			if err := w.Close(); err != nil {
				return err
			}
			return d.Delete(ctx, "/c")
		}},
		{"FreshWriterThenCancel", func(ctx context.Context, d *Driver, w driver.FileWriter) error {
			if err := w.Close(); err != nil {
				return err
			}
			w2, err := d.Writer(ctx, "/c/u/data", false)
			if err != nil {
				return err
			}
			return w2.Cancel(ctx)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := f.driver(t, cont, driver.Params{"chunksize": 1024})
			// A committed sibling keeps /c a directory for Delete to find.
			if err := d.PutContent(ctx, "/c/kept", []byte("x")); err != nil {
				t.Fatal(err)
			}
			w, err := d.Writer(ctx, "/c/u/data", false)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w, make([]byte, 2500))
			if err := tc.end(ctx, d, w); err != nil {
				t.Fatal(err)
			}
			names := blobNames(t, f, cont)
			for _, n := range names {
				if n == "c/u/data" {
					t.Fatalf("blobs after %s = %v, want no c/u/data, committed or not", tc.name, names)
				}
			}
			if n := uncommittedBlocks(t, f, cont, "c/u/data"); n != 0 {
				t.Fatalf("uncommitted blocks = %d, want 0", n)
			}
			_ = d.Delete(ctx, "/c")
		})
	}
}

func TestEmptyWriteClosedCanBeResumed(t *testing.T) {
	f := newFixture(t)
	cont := f.az.Container(t)
	ctx := t.Context()
	w, err := f.driver(t, cont, nil).Writer(ctx, "/e/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d := f.driver(t, cont, nil)
	w, err = d.Writer(ctx, "/e/data", true)
	if err != nil {
		t.Fatalf("resume an empty write: %v", err)
	}
	if w.Size() != 0 {
		t.Fatalf("Size = %d, want 0", w.Size())
	}
	mustWrite(t, w, []byte("late"))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	fi, err := d.Stat(ctx, "/e/data")
	if err != nil || fi.Size != 4 {
		t.Fatalf("Stat = %+v, %v; want 4 bytes (the marker block is not committed)", fi, err)
	}
}

func TestRootDirectoryKeepsDistributionLayout(t *testing.T) {
	f := newFixture(t)
	cont := f.az.Container(t)
	ctx := t.Context()
	for _, root := range []string{"/registry/", "registry", "registry/"} {
		d := f.driver(t, cont, driver.Params{"rootdirectory": root})
		if err := d.PutContent(ctx, "/docker/registry/v2/x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	names := blobNames(t, f, cont)
	if len(names) != 1 || names[0] != "registry/docker/registry/v2/x" {
		t.Fatalf("blobs = %v, want only registry/docker/registry/v2/x", names)
	}
}

// TestWriterGivesItsBufferBackOnceHoweverItEnds ends writers every way,
// failed stages and commits included, and checks that each gave its buffer
// back to the pool exactly once and did not touch it after.
func TestWriterGivesItsBufferBackOnceHoweverItEnds(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		fail bool // the container goes after Writer, so every request fails
		run  func(t *testing.T, w driver.FileWriter) error
	}{
		{"CloseThenCancel", false, func(t *testing.T, w driver.FileWriter) error {
			mustWrite(t, w, make([]byte, 1500))
			if err := w.Close(); err != nil {
				return err
			}
			return w.Cancel(ctx)
		}},
		{"Commit", false, func(t *testing.T, w driver.FileWriter) error {
			mustWrite(t, w, make([]byte, 1500))
			return w.Commit(ctx)
		}},
		{"Cancel", false, func(t *testing.T, w driver.FileWriter) error {
			mustWrite(t, w, make([]byte, 10))
			return w.Cancel(ctx)
		}},
		{"FailedStageThenClose", true, func(t *testing.T, w driver.FileWriter) error {
			if _, err := w.Write(make([]byte, 1500)); err == nil {
				return errors.New("Write staged a block in a deleted container")
			}
			if err := w.Close(); err == nil {
				return errors.New("Close of a failed writer succeeded")
			}
			return nil
		}},
		{"FailedCommit", true, func(t *testing.T, w driver.FileWriter) error {
			mustWrite(t, w, make([]byte, 10))
			if err := w.Commit(ctx); err == nil {
				return errors.New("Commit into a deleted container succeeded")
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cont := f.container(t)
			// One block at a time, so that a failed stage fails the Write.
			d := f.driver(t, cont, driver.Params{"chunksize": 1024, "writeconcurrency": 1})
			fw, err := d.Writer(ctx, "/u/data", false)
			if err != nil {
				t.Fatal(err)
			}
			w := fw.(*writer)
			buf := &w.buf[:1][0]
			if tc.fail {
				if _, err := f.az.ContainerClient(cont).Delete(ctx, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.run(t, w); err != nil {
				t.Fatal(err)
			}
			partbuftest.CheckGivenBack(ctx, t, d.bufs, buf, func() bool { return w.buf != nil }, w)
		})
	}
}
