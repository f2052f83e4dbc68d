package driver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// Wrap returns d with every path checked by ValidPath before the driver sees
// it, and every error it returns made a *PathError naming the operation, the
// path and the driver. Wrapping a wrapped driver returns it unchanged.
//
// The result implements every optional interface (Walker, Redirector,
// ContentPutter, ScratchPutter, FileOpener, UploadLister) so that wrapping hides none of
// d's. Where d lacks one, the wrapper does what a caller would do without
// it: Walk lists directory by directory, PutContent goes through Writer,
// PutScratch through PutContent,
// RedirectURL returns "" (serve it yourself), and OpenFile and Unfinished
// return ErrUnsupported. Callers that must know what d itself offers use
// Unwrap.
func Wrap(d Driver) Driver {
	if w, ok := d.(*wrapped); ok {
		return w
	}
	return &wrapped{d: d}
}

type wrapped struct {
	d Driver
}

var (
	_ Walker        = (*wrapped)(nil)
	_ Redirector    = (*wrapped)(nil)
	_ ContentPutter = (*wrapped)(nil)
	_ ScratchPutter = (*wrapped)(nil)
	_ FileOpener    = (*wrapped)(nil)
	_ UploadLister  = (*wrapped)(nil)
	_ PartSizer     = (*wrapped)(nil)
	_ DirTimer      = (*wrapped)(nil)
	_ PageLister    = (*wrapped)(nil)
)

// PartSize is the wrapped driver's part size, or 0 when it has no minimum.
func (w *wrapped) PartSize() int64 {
	if p, ok := w.d.(PartSizer); ok {
		return p.PartSize()
	}
	return 0
}

// Unwrap returns the driver Wrap was given.
func (w *wrapped) Unwrap() Driver { return w.d }

func (w *wrapped) Name() string { return w.d.Name() }

func (w *wrapped) DirTimes() bool { return HasDirTimes(w.d) }

// fail makes err a *PathError for op on path. A *PathError from the driver
// keeps its detail, with what it lacks filled in.
func (w *wrapped) fail(op, path string, err error) error {
	if err == nil {
		return nil
	}
	pe, ok := err.(*PathError)
	if !ok {
		return &PathError{Op: op, Path: path, Driver: w.d.Name(), Err: err}
	}
	if pe.Op != "" && pe.Path != "" && pe.Driver != "" {
		return err
	}
	// Copy rather than fill in, as a driver may return a shared value.
	out := *pe
	if out.Op == "" {
		out.Op = op
	}
	if out.Path == "" {
		out.Path = path
	}
	if out.Driver == "" {
		out.Driver = w.d.Name()
	}
	return &out
}

func (w *wrapped) check(op, path string) error {
	if !ValidPath(path) {
		return &PathError{Op: op, Path: path, Driver: w.d.Name(), Err: ErrInvalidPath}
	}
	return nil
}

func (w *wrapped) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if err := w.check("reader", path); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, &PathError{Op: "reader", Path: path, Driver: w.d.Name(), Err: ErrInvalidOffset}
	}
	// The reader is returned as it is, not wrapped, so that an *os.File keeps
	// its fast paths (sendfile, copy_file_range) through io.Copy.
	r, err := w.d.Reader(ctx, path, offset)
	return r, w.fail("reader", path, err)
}

func (w *wrapped) Writer(ctx context.Context, path string, append bool) (FileWriter, error) {
	if err := w.check("writer", path); err != nil {
		return nil, err
	}
	fw, err := w.d.Writer(ctx, path, append)
	if err != nil {
		return nil, w.fail("writer", path, err)
	}
	return &wrappedWriter{fw: fw, w: w, path: path}, nil
}

func (w *wrapped) Stat(ctx context.Context, path string) (FileInfo, error) {
	if err := w.check("stat", path); err != nil {
		return FileInfo{}, err
	}
	fi, err := w.d.Stat(ctx, path)
	return fi, w.fail("stat", path, err)
}

func (w *wrapped) List(ctx context.Context, dir string) ([]string, error) {
	if err := w.check("list", dir); err != nil {
		return nil, err
	}
	names, err := w.d.List(ctx, dir)
	return names, w.fail("list", dir, err)
}

func (w *wrapped) ListPage(ctx context.Context, dir, after string, n int) ([]string, error) {
	if err := w.check("list", dir); err != nil {
		return nil, err
	}
	names, err := ListPage(ctx, w.d, dir, after, n)
	return names, w.fail("list", dir, err)
}

func (w *wrapped) Move(ctx context.Context, src, dst string) error {
	if err := w.check("move", src); err != nil {
		return err
	}
	if err := w.check("move", dst); err != nil {
		return err
	}
	return w.fail("move", src, w.d.Move(ctx, src, dst))
}

func (w *wrapped) Delete(ctx context.Context, path string) error {
	if err := w.check("delete", path); err != nil {
		return err
	}
	return w.fail("delete", path, w.d.Delete(ctx, path))
}

// callerError marks an error returned by the caller's WalkFunc, which Walk
// must hand back as it is rather than attribute to the driver.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

func (w *wrapped) Walk(ctx context.Context, root string, fn WalkFunc) error {
	if err := w.check("walk", root); err != nil {
		return err
	}
	var stop *callerError
	mark := func(fi FileInfo) error {
		err := fn(fi)
		if err == nil || err == ErrSkipDir {
			return err
		}
		stop = &callerError{err}
		return stop
	}
	var err error
	if wk, ok := w.d.(Walker); ok {
		err = wk.Walk(ctx, root, mark)
	} else {
		err = walkList(ctx, w.d, root, mark)
	}
	if stop != nil && errors.Is(err, stop) {
		return stop.err
	}
	return w.fail("walk", root, err)
}

func (w *wrapped) PutContent(ctx context.Context, path string, content []byte) error {
	if err := w.check("putcontent", path); err != nil {
		return err
	}
	return w.fail("putcontent", path, PutContent(ctx, w.d, path, content))
}

func (w *wrapped) PutScratch(ctx context.Context, path string, content []byte) error {
	if err := w.check("putscratch", path); err != nil {
		return err
	}
	return w.fail("putscratch", path, PutScratch(ctx, w.d, path, content))
}

func (w *wrapped) RedirectURL(r *http.Request, path string) (string, error) {
	if err := w.check("redirect", path); err != nil {
		return "", err
	}
	rd, ok := w.d.(Redirector)
	if !ok {
		return "", nil
	}
	u, err := rd.RedirectURL(r, path)
	return u, w.fail("redirect", path, err)
}

func (w *wrapped) OpenFile(ctx context.Context, path string) (*os.File, error) {
	if err := w.check("openfile", path); err != nil {
		return nil, err
	}
	fo, ok := w.d.(FileOpener)
	if !ok {
		return nil, w.fail("openfile", path, ErrUnsupported)
	}
	f, err := fo.OpenFile(ctx, path)
	return f, w.fail("openfile", path, err)
}

func (w *wrapped) Unfinished(ctx context.Context, dir string) (map[string]time.Time, error) {
	if err := w.check("unfinished", dir); err != nil {
		return nil, err
	}
	ul, ok := w.d.(UploadLister)
	if !ok {
		return nil, w.fail("unfinished", dir, ErrUnsupported)
	}
	m, err := ul.Unfinished(ctx, dir)
	return m, w.fail("unfinished", dir, err)
}

// wrappedWriter tags the errors of a driver's FileWriter.
type wrappedWriter struct {
	fw   FileWriter
	w    *wrapped
	path string
}

func (ww *wrappedWriter) Write(p []byte) (int, error) {
	n, err := ww.fw.Write(p)
	return n, ww.w.fail("write", ww.path, err)
}

func (ww *wrappedWriter) Close() error {
	return ww.w.fail("close", ww.path, ww.fw.Close())
}

func (ww *wrappedWriter) Size() int64 { return ww.fw.Size() }

func (ww *wrappedWriter) Commit(ctx context.Context) error {
	return ww.w.fail("commit", ww.path, ww.fw.Commit(ctx))
}

// CommitTo commits in one step when the driver's writer can, and returns
// ErrUnsupported otherwise (see the CommitTo function).
func (ww *wrappedWriter) CommitTo(ctx context.Context, path string) error {
	cm, ok := ww.fw.(CommitMover)
	if !ok {
		return ErrUnsupported
	}
	if err := ww.w.check("commitTo", path); err != nil {
		return err
	}
	return ww.w.fail("commitTo", path, cm.CommitTo(ctx, path))
}

func (ww *wrappedWriter) Cancel(ctx context.Context) error {
	return ww.w.fail("cancel", ww.path, ww.fw.Cancel(ctx))
}
