package filesystem

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWritesStartWritebackBehindThemselves checks which ranges a writer
// hands to the kernel: each of at least writebackEvery bytes, in order,
// right behind the previous one, never past what was written, and none
// for a small write; a resumed writer goes on from its own start. The
// committed file holds exactly what was written.
func TestWritesStartWritebackBehindThemselves(t *testing.T) {
	d, err := New(Params{RootDirectory: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ off, n int64 }
	var got []span
	d.writeback = func(f *os.File, off, n int64) error {
		got = append(got, span{off, n})
		return startWriteback(f, off, n) // the real call, on a real file
	}
	ctx := t.Context()
	var want bytes.Buffer
	chunk := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16)
	chunk = append(chunk, 'x') // odd sizes, so ranges do not fall on chunk edges

	write := func(append bool, chunks int) {
		t.Helper()
		w, err := d.Writer(ctx, "/big/data", append)
		if err != nil {
			t.Fatal(err)
		}
		start := w.Size()
		got = nil
		for range chunks {
			if _, err := w.Write(chunk); err != nil {
				t.Fatal(err)
			}
			want.Write(chunk)
		}
		next := start
		for _, s := range got {
			if s.off != next || s.n < writebackEvery {
				t.Errorf("writeback of %d bytes at %d; want at least %d at %d", s.n, s.off, writebackEvery, next)
			}
			next = s.off + s.n
		}
		if end := w.Size(); next > end || end-next >= writebackEvery {
			t.Errorf("writeback reached %d of %d written bytes", next, end)
		}
		if append {
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		} else if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write(false, 7) // 21 MiB: two ranges
	if len(got) != 2 {
		t.Errorf("%d writebacks for 21 MiB, want 2", len(got))
	}
	write(true, 3) // 9 MiB more, counted from the resumed writer's start
	if len(got) != 1 {
		t.Errorf("%d writebacks for 9 MiB resumed, want 1", len(got))
	}

	small, err := d.Writer(ctx, "/small/data", false)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	if _, err := small.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if err := small.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("a 64 KiB write started %d writebacks", len(got))
	}

	b, err := os.ReadFile(filepath.Join(d.root, "big", "data"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want.Bytes()) {
		t.Errorf("committed file differs from what was written (%d bytes, want %d)", len(b), want.Len())
	}
}
