package driver_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/filesystem"
	"github.com/berth-registry/berth/storage/driver/inmemory"
)

// stub fails every call with err and counts the calls that reach it.
type stub struct {
	err   error
	calls int
}

func (s *stub) Name() string { return "stub" }
func (s *stub) Reader(context.Context, string, int64) (io.ReadCloser, error) {
	s.calls++
	return nil, s.err
}
func (s *stub) Writer(context.Context, string, bool) (driver.FileWriter, error) {
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	return stubWriter{s}, nil
}
func (s *stub) Stat(context.Context, string) (driver.FileInfo, error) {
	s.calls++
	return driver.FileInfo{}, s.err
}
func (s *stub) List(context.Context, string) ([]string, error) { s.calls++; return nil, s.err }
func (s *stub) Move(context.Context, string, string) error     { s.calls++; return s.err }
func (s *stub) Delete(context.Context, string) error           { s.calls++; return s.err }

type stubWriter struct{ s *stub }

func (w stubWriter) Write([]byte) (int, error)    { return 0, errors.New("disk full") }
func (w stubWriter) Close() error                 { return errors.New("close failed") }
func (w stubWriter) Size() int64                  { return 0 }
func (w stubWriter) Commit(context.Context) error { return driver.ErrNotFound }
func (w stubWriter) Cancel(context.Context) error { return errors.New("cancel failed") }

// plain hides every optional interface of the driver it holds.
type plain struct{ driver.Driver }

// ops calls every path-taking method of a wrapped driver on path.
func ops(d driver.Driver) map[string]func(path string) error {
	ctx := context.Background()
	return map[string]func(string) error{
		"reader": func(p string) error { _, err := d.Reader(ctx, p, 0); return err },
		"writer": func(p string) error { _, err := d.Writer(ctx, p, false); return err },
		"stat":   func(p string) error { _, err := d.Stat(ctx, p); return err },
		"list":   func(p string) error { _, err := d.List(ctx, p); return err },
		"move":   func(p string) error { return d.Move(ctx, p, "/ok") },
		"delete": func(p string) error { return d.Delete(ctx, p) },
		"walk": func(p string) error {
			return d.(driver.Walker).Walk(ctx, p, func(driver.FileInfo) error { return nil })
		},
		"putcontent": func(p string) error { return d.(driver.ContentPutter).PutContent(ctx, p, nil) },
		"redirect": func(p string) error {
			_, err := d.(driver.Redirector).RedirectURL(httptest.NewRequest("GET", "/", nil), p)
			return err
		},
		"openfile":   func(p string) error { _, err := d.(driver.FileOpener).OpenFile(ctx, p); return err },
		"unfinished": func(p string) error { _, err := d.(driver.UploadLister).Unfinished(ctx, p); return err },
	}
}

func TestWrapRejectsInvalidPathsBeforeTheDriver(t *testing.T) {
	bad := []string{"", "a", "a/b", "/a/", "//", "/a//b", "/a/./b", "/..", "/a/..", "/a~", "/a b", "/a\x00", "/é", "/a\\b"}
	s := &stub{}
	d := driver.Wrap(s)
	for op, call := range ops(d) {
		for _, p := range bad {
			err := call(p)
			if !errors.Is(err, driver.ErrInvalidPath) {
				t.Errorf("%s(%q) = %v, want ErrInvalidPath", op, p, err)
				continue
			}
			var pe *driver.PathError
			if !errors.As(err, &pe) || pe.Op != op || pe.Path != p || pe.Driver != "stub" {
				t.Errorf("%s(%q) = %#v, want a PathError naming op, path and driver", op, p, err)
			}
		}
	}
	if err := d.Move(context.Background(), "/ok", "/a/../b"); !errors.Is(err, driver.ErrInvalidPath) {
		t.Errorf("move to an invalid destination = %v, want ErrInvalidPath", err)
	}
	if s.calls != 0 {
		t.Errorf("the driver was called %d times with invalid paths", s.calls)
	}
}

func TestWrapRejectsNegativeOffset(t *testing.T) {
	s := &stub{}
	_, err := driver.Wrap(s).Reader(context.Background(), "/a", -1)
	if !errors.Is(err, driver.ErrInvalidOffset) || s.calls != 0 {
		t.Fatalf("Reader(-1) = %v after %d driver calls, want ErrInvalidOffset before the driver", err, s.calls)
	}
}

func TestWrapTagsEveryDriverError(t *testing.T) {
	cause := errors.New("backend exploded")
	d := driver.Wrap(&stub{err: cause})
	for op, call := range ops(d) {
		err := call("/x/y")
		var pe *driver.PathError
		switch op {
		case "redirect", "openfile", "unfinished":
			// The stub has none of these: the wrapper's fallback answers.
			continue
		}
		if !errors.As(err, &pe) || pe.Op != op || pe.Path != "/x/y" || pe.Driver != "stub" || !errors.Is(err, cause) {
			t.Errorf("%s error = %#v, want PathError{%s /x/y stub} wrapping the cause", op, err, op)
		}
	}
}

func TestWrapTagsWriterErrors(t *testing.T) {
	ctx := context.Background()
	w, err := driver.Wrap(&stub{}).Writer(ctx, "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write([]byte("x"))
	for op, err := range map[string]error{"write": werr, "close": w.Close(), "commit": w.Commit(ctx), "cancel": w.Cancel(ctx)} {
		var pe *driver.PathError
		if !errors.As(err, &pe) || pe.Op != op || pe.Path != "/f" || pe.Driver != "stub" {
			t.Errorf("%s error = %#v, want a PathError naming op, path and driver", op, err)
		}
	}
}

func TestWrapCompletesThePathErrorOfADriver(t *testing.T) {
	inner := &driver.PathError{Op: "stat", Path: "/real/key", Err: driver.ErrNotFound}
	_, err := driver.Wrap(&stub{err: inner}).Stat(context.Background(), "/p")
	var pe *driver.PathError
	if !errors.As(err, &pe) || pe.Path != "/real/key" || pe.Driver != "stub" || !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("got %#v, want the driver's PathError with the driver's name added", err)
	}
	if inner.Driver != "" {
		t.Error("the driver's own error value was modified")
	}
}

func TestWrapFallbacksForMissingCapabilities(t *testing.T) {
	ctx := context.Background()
	d := driver.Wrap(plain{inmemory.New()})

	if err := d.(driver.ContentPutter).PutContent(ctx, "/a/b", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := driver.GetContent(ctx, d, "/a/b", 100)
	if err != nil || string(got) != "hello" {
		t.Fatalf("content put through the Writer fallback = %q, %v", got, err)
	}
	u, err := d.(driver.Redirector).RedirectURL(httptest.NewRequest("GET", "/", nil), "/a/b")
	if u != "" || err != nil {
		t.Errorf("RedirectURL = %q, %v; want \"\", nil (serve it yourself)", u, err)
	}
	if _, err := d.(driver.FileOpener).OpenFile(ctx, "/a/b"); !errors.Is(err, driver.ErrUnsupported) {
		t.Errorf("OpenFile = %v, want ErrUnsupported", err)
	}
	if _, err := d.(driver.UploadLister).Unfinished(ctx, "/a"); !errors.Is(err, driver.ErrUnsupported) {
		t.Errorf("Unfinished = %v, want ErrUnsupported", err)
	}
}

func TestWrapWalkReturnsTheCallersErrorUnchanged(t *testing.T) {
	ctx := context.Background()
	stop := errors.New("enough")
	for name, inner := range map[string]driver.Driver{"walker": inmemory.New(), "list fallback": plain{inmemory.New()}} {
		d := driver.Wrap(inner)
		if err := driver.PutContent(ctx, d, "/a/b", []byte("x")); err != nil {
			t.Fatal(err)
		}
		err := driver.Walk(ctx, d, "/", func(driver.FileInfo) error { return stop })
		if err != stop {
			t.Errorf("%s: Walk = %#v, want the callback's error itself", name, err)
		}
		err = driver.Walk(ctx, d, "/missing", func(driver.FileInfo) error { return nil })
		var pe *driver.PathError
		if !errors.Is(err, driver.ErrNotFound) || !errors.As(err, &pe) || pe.Op != "walk" || pe.Driver != "inmemory" {
			t.Errorf("%s: Walk of a missing root = %#v, want a walk PathError with ErrNotFound", name, err)
		}
	}
}

func TestWrapIsIdempotentAndUnwraps(t *testing.T) {
	inner := inmemory.New()
	d := driver.Wrap(inner)
	if driver.Wrap(d) != d {
		t.Error("wrapping a wrapped driver wrapped it again")
	}
	u, ok := d.(interface{ Unwrap() driver.Driver })
	if !ok || u.Unwrap() != driver.Driver(inner) {
		t.Error("Unwrap does not return the driver given to Wrap")
	}
	if d.Name() != "inmemory" {
		t.Errorf("Name = %q", d.Name())
	}
}

// TestHasDirTimesSeesThroughWrappers: the tag-list cache asks the wrapped,
// instrumented driver, so the capability must survive both layers.
func TestHasDirTimesSeesThroughWrappers(t *testing.T) {
	fs, err := filesystem.New(filesystem.Params{RootDirectory: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		d    driver.Driver
		want bool
	}{
		{"filesystem", fs, true},
		{"inmemory", inmemory.New(), false},
	} {
		layers := map[string]driver.Driver{
			"bare":                 tc.d,
			"wrapped":              driver.Wrap(tc.d),
			"instrumented wrapped": driver.Instrument(driver.Wrap(tc.d), &recorder{}),
		}
		for layer, d := range layers {
			if got := driver.HasDirTimes(d); got != tc.want {
				t.Errorf("%s, %s: HasDirTimes = %v, want %v", tc.name, layer, got, tc.want)
			}
		}
	}
}

// TestStatFileFallsBackToStat: on a driver without FileStater, StatFile
// is Stat, with a directory answered as not found.
func TestStatFileFallsBackToStat(t *testing.T) {
	ctx := context.Background()
	d := driver.Wrap(inmemory.New())
	if err := driver.PutContent(ctx, d, "/dir/file", []byte("12345")); err != nil {
		t.Fatal(err)
	}
	if fi, err := driver.StatFile(ctx, d, "/dir/file"); err != nil || fi.Size != 5 {
		t.Fatalf("StatFile of a file = %+v, %v", fi, err)
	}
	for _, p := range []string{"/dir", "/dir/none"} {
		if _, err := driver.StatFile(ctx, d, p); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("StatFile(%s) = %v, want ErrNotFound", p, err)
		}
	}
}

// TestDeleteKeepParentThroughTheWrappers: DeleteKeepParent reaches the
// file system's own through Wrap and Instrument, which keeps the emptied
// directory, where Delete removes it; on a driver without ParentKeeper it
// is Delete.
func TestDeleteKeepParentThroughTheWrappers(t *testing.T) {
	ctx := t.Context()
	fsd, err := filesystem.New(filesystem.Params{RootDirectory: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		d     driver.Driver
		keeps bool
	}{
		{"file system", fsd, true},
		{"wrapped", driver.Wrap(fsd), true},
		{"instrumented", driver.Instrument(driver.Wrap(fsd), &recorder{}), true},
		{"without ParentKeeper", driver.Wrap(inmemory.New()), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, keep := range []bool{true, false} {
				if err := driver.PutContent(ctx, tc.d, "/r/_uploads/s/f", []byte("x")); err != nil {
					t.Fatal(err)
				}
				del := tc.d.Delete
				if keep {
					del = func(ctx context.Context, p string) error { return driver.DeleteKeepParent(ctx, tc.d, p) }
				}
				if err := del(ctx, "/r/_uploads/s"); err != nil {
					t.Fatal(err)
				}
				if _, err := tc.d.Stat(ctx, "/r/_uploads/s"); !errors.Is(err, driver.ErrNotFound) {
					t.Fatalf("keep %v: the deleted directory: %v", keep, err)
				}
				left, err := tc.d.List(ctx, "/r/_uploads")
				if keep && tc.keeps {
					if err != nil || len(left) != 0 {
						t.Fatalf("keep %v: parent holds %q (%v), want it kept empty", keep, left, err)
					}
				} else if !errors.Is(err, driver.ErrNotFound) {
					t.Fatalf("keep %v: parent holds %q (%v), want it gone", keep, left, err)
				}
			}
		})
	}
}
