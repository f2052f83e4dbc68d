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
// ContentPutter, ScratchPutter, Creator, FileOpener, UploadLister,
// PartSizer, DirTimer, PageLister, FreshWriter, FileStater, ParentKeeper)
// so that wrapping hides none of d's. Where d lacks one, the wrapper does
// what a caller would do without it: Walk lists directory by directory,
// NewWriter is Writer, StatFile is Stat, DeleteKeepParent is Delete,
// PutContent goes through Writer, PutScratch through PutContent, Create
// returns ErrUnsupported, RedirectURL returns "" (serve it yourself),
// PartSize is 0, ListPage lists the whole directory, and OpenFile and
// Unfinished return ErrUnsupported. Callers that must know what d itself
// offers use Unwrap.
//
// Every call is bounded by DefaultTimeouts (WithTimeouts sets others), so
// a backend that stops answering fails the call with ErrTimeout. A writer
// runs under a context of its own, detached from the cancellation of the
// one given to Writer: what a client sent is persisted by Close even when
// the client is gone, within the write timeout.
func Wrap(d Driver) Driver {
	if w, ok := d.(*wrapped); ok {
		return w
	}
	return &wrapped{d: d, t: DefaultTimeouts()}
}

type wrapped struct {
	d Driver
	t Timeouts
	// rd makes redirect URLs in place of d's own when not nil (storage
	// middleware: see WithRedirector).
	rd Redirector
}

var (
	_ Walker        = (*wrapped)(nil)
	_ Redirector    = (*wrapped)(nil)
	_ ContentPutter = (*wrapped)(nil)
	_ ScratchPutter = (*wrapped)(nil)
	_ Creator       = (*wrapped)(nil)
	_ FileOpener    = (*wrapped)(nil)
	_ UploadLister  = (*wrapped)(nil)
	_ PartSizer     = (*wrapped)(nil)
	_ DirTimer      = (*wrapped)(nil)
	_ PageLister    = (*wrapped)(nil)
	_ FreshWriter   = (*wrapped)(nil)
	_ FileStater    = (*wrapped)(nil)
	_ ParentKeeper  = (*wrapped)(nil)
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

func (w *wrapped) RacyCreate() bool { return !AtomicCreate(w.d) }

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
	wd := newWatchdog(ctx)
	done := wd.arm(w.t.Metadata)
	r, err := w.d.Reader(wd.ctx, path, offset)
	if err = done(err); err != nil {
		wd.release()
		return nil, w.fail("reader", path, err)
	}
	if _, ok := r.(*os.File); ok {
		// Returned as it is, so that it keeps its fast paths (sendfile,
		// copy_file_range) through io.Copy; no context governs its reads.
		wd.release()
		return r, nil
	}
	return &idleReader{r: r, wd: wd, limit: w.t.Read, w: w, path: path}, nil
}

func (w *wrapped) Writer(ctx context.Context, path string, append bool) (FileWriter, error) {
	if err := w.check("writer", path); err != nil {
		return nil, err
	}
	return w.open(ctx, path, func(ctx context.Context) (FileWriter, error) { return w.d.Writer(ctx, path, append) })
}

// NewWriter starts a write with the driver's FreshWriter when it has one,
// else with Writer (see the NewWriter function).
func (w *wrapped) NewWriter(ctx context.Context, path string) (FileWriter, error) {
	if err := w.check("writer", path); err != nil {
		return nil, err
	}
	return w.open(ctx, path, func(ctx context.Context) (FileWriter, error) { return NewWriter(ctx, w.d, path) })
}

// open opens a driver's writer with open, bounded by the metadata timeout.
// The writer's context keeps the caller's values (a trace) but not its
// cancellation, which reaches only the opening.
func (w *wrapped) open(ctx context.Context, path string, open func(context.Context) (FileWriter, error)) (FileWriter, error) {
	wd := newWatchdog(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { wd.cancel(context.Cause(ctx)) })
	done := wd.arm(w.t.Metadata)
	fw, err := open(wd.ctx)
	stop()
	if err = done(err); err != nil {
		wd.release()
		return nil, w.fail("writer", path, err)
	}
	return &wrappedWriter{fw: fw, w: w, wd: wd, path: path}, nil
}

func (w *wrapped) Stat(ctx context.Context, path string) (FileInfo, error) {
	if err := w.check("stat", path); err != nil {
		return FileInfo{}, err
	}
	ctx, done := within(ctx, w.t.Metadata)
	fi, err := w.d.Stat(ctx, path)
	return fi, w.fail("stat", path, done(err))
}

// StatFile describes a file with the driver's FileStater when it has one,
// else with Stat (see the StatFile function).
func (w *wrapped) StatFile(ctx context.Context, path string) (FileInfo, error) {
	if err := w.check("stat", path); err != nil {
		return FileInfo{}, err
	}
	ctx, done := within(ctx, w.t.Metadata)
	fi, err := StatFile(ctx, w.d, path)
	return fi, w.fail("stat", path, done(err))
}

func (w *wrapped) List(ctx context.Context, dir string) ([]string, error) {
	if err := w.check("list", dir); err != nil {
		return nil, err
	}
	ctx, done := within(ctx, w.t.Metadata)
	names, err := w.d.List(ctx, dir)
	return names, w.fail("list", dir, done(err))
}

func (w *wrapped) ListPage(ctx context.Context, dir, after string, n int) ([]string, bool, error) {
	if err := w.check("list", dir); err != nil {
		return nil, false, err
	}
	ctx, done := within(ctx, w.t.Metadata)
	names, more, err := ListPage(ctx, w.d, dir, after, n)
	return names, more, w.fail("list", dir, done(err))
}

func (w *wrapped) Move(ctx context.Context, src, dst string) error {
	if err := w.check("move", src); err != nil {
		return err
	}
	if err := w.check("move", dst); err != nil {
		return err
	}
	ctx, done := within(ctx, w.t.Commit)
	return w.fail("move", src, done(w.d.Move(ctx, src, dst)))
}

func (w *wrapped) Delete(ctx context.Context, path string) error {
	if err := w.check("delete", path); err != nil {
		return err
	}
	ctx, done := within(ctx, w.t.Commit)
	return w.fail("delete", path, done(w.d.Delete(ctx, path)))
}

// DeleteKeepParent deletes path with the driver's ParentKeeper when it
// has one, else with Delete (see the DeleteKeepParent function).
func (w *wrapped) DeleteKeepParent(ctx context.Context, path string) error {
	if err := w.check("delete", path); err != nil {
		return err
	}
	ctx, done := within(ctx, w.t.Commit)
	return w.fail("delete", path, done(DeleteKeepParent(ctx, w.d, path)))
}

// callerError marks an error returned by the caller's WalkFunc, which Walk
// must hand back as it is rather than attribute to the driver.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

func (w *wrapped) Walk(ctx context.Context, root string, fn WalkFunc) error {
	if err := w.check("walk", root); err != nil {
		return err
	}
	// Each step of the walk is bounded, not the walk: a tree of any size
	// may be walked, and the time fn takes does not count.
	wd := newWatchdog(ctx)
	defer wd.release()
	done := wd.arm(w.t.Metadata)
	var stop *callerError
	mark := func(fi FileInfo) error {
		wd.timer.Stop()
		err := fn(fi)
		wd.timer.Reset(w.t.Metadata)
		if err == nil || err == ErrSkipDir {
			return err
		}
		stop = &callerError{err}
		return stop
	}
	var err error
	if wk, ok := w.d.(Walker); ok {
		err = wk.Walk(wd.ctx, root, mark)
	} else {
		err = walkList(wd.ctx, w.d, root, mark)
	}
	err = done(err)
	if stop != nil && errors.Is(err, stop) {
		return stop.err
	}
	return w.fail("walk", root, err)
}

func (w *wrapped) PutContent(ctx context.Context, path string, content []byte) error {
	if err := w.check("putcontent", path); err != nil {
		return err
	}
	ctx, done := within(ctx, w.t.Metadata)
	return w.fail("putcontent", path, done(PutContent(ctx, w.d, path, content)))
}

func (w *wrapped) PutScratch(ctx context.Context, path string, content []byte) error {
	if err := w.check("putscratch", path); err != nil {
		return err
	}
	ctx, done := within(ctx, w.t.Metadata)
	return w.fail("putscratch", path, done(PutScratch(ctx, w.d, path, content)))
}

func (w *wrapped) Create(ctx context.Context, path string, content []byte) error {
	if err := w.check("create", path); err != nil {
		return err
	}
	ctx, done := within(ctx, w.t.Metadata)
	return w.fail("create", path, done(Create(ctx, w.d, path, content)))
}

func (w *wrapped) RedirectURL(r *http.Request, path string) (string, error) {
	if err := w.check("redirect", path); err != nil {
		return "", err
	}
	rd := w.rd
	if rd == nil {
		var ok bool
		if rd, ok = w.d.(Redirector); !ok {
			return "", nil
		}
	}
	ctx, done := within(r.Context(), w.t.Metadata)
	u, err := rd.RedirectURL(r.WithContext(ctx), path)
	return u, w.fail("redirect", path, done(err))
}

func (w *wrapped) OpenFile(ctx context.Context, path string) (*os.File, error) {
	if err := w.check("openfile", path); err != nil {
		return nil, err
	}
	fo, ok := w.d.(FileOpener)
	if !ok {
		return nil, w.fail("openfile", path, ErrUnsupported)
	}
	ctx, done := within(ctx, w.t.Metadata)
	f, err := fo.OpenFile(ctx, path)
	return f, w.fail("openfile", path, done(err))
}

func (w *wrapped) Unfinished(ctx context.Context, dir string) (map[string]time.Time, error) {
	if err := w.check("unfinished", dir); err != nil {
		return nil, err
	}
	ul, ok := w.d.(UploadLister)
	if !ok {
		return nil, w.fail("unfinished", dir, ErrUnsupported)
	}
	ctx, done := within(ctx, w.t.Commit)
	m, err := ul.Unfinished(ctx, dir)
	return m, w.fail("unfinished", dir, done(err))
}

// wrappedWriter bounds each call of a driver's FileWriter and tags its
// errors. The driver's writer runs under wd's context, which the watchdog
// cancels when one call overruns; Commit and Cancel also get a context
// bounded by the commit timeout, as a driver may use either.
type wrappedWriter struct {
	fw   FileWriter
	w    *wrapped
	wd   *watchdog
	path string
}

func (ww *wrappedWriter) Write(p []byte) (int, error) {
	done := ww.wd.arm(ww.w.t.Write)
	n, err := ww.fw.Write(p)
	return n, ww.w.fail("write", ww.path, done(err))
}

func (ww *wrappedWriter) Close() error {
	done := ww.wd.arm(ww.w.t.Write)
	err := done(ww.fw.Close())
	ww.wd.release()
	return ww.w.fail("close", ww.path, err)
}

// CloseShared closes in Distribution's form when the driver's writer can,
// and returns ErrUnsupported otherwise (see the CloseShared function).
func (ww *wrappedWriter) CloseShared() error {
	sc, ok := ww.fw.(SharedCloser)
	if !ok {
		return ErrUnsupported
	}
	done := ww.wd.arm(ww.w.t.Write)
	err := done(sc.CloseShared())
	ww.wd.release()
	return ww.w.fail("close", ww.path, err)
}

func (ww *wrappedWriter) Size() int64 { return ww.fw.Size() }

// Expect passes the hint on; it sends nothing, so no deadline is armed
// (see Expecter).
func (ww *wrappedWriter) Expect(n int64) { Expect(ww.fw, n) }

// finish runs the last call of a writer (Commit, CommitTo, Cancel) under
// the commit timeout, on both contexts.
func (ww *wrappedWriter) finish(ctx context.Context, call func(context.Context) error) error {
	ctx, cdone := within(ctx, ww.w.t.Commit)
	wdone := ww.wd.arm(ww.w.t.Commit)
	err := call(ctx)
	err = cdone(wdone(err))
	if err == nil {
		ww.wd.release()
	}
	return err
}

func (ww *wrappedWriter) Commit(ctx context.Context) error {
	return ww.w.fail("commit", ww.path, ww.finish(ctx, ww.fw.Commit))
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
	return ww.w.fail("commitTo", path, ww.finish(ctx, func(ctx context.Context) error { return cm.CommitTo(ctx, path) }))
}

// Reopen reopens the driver's writer when it can, and returns
// ErrUnsupported otherwise (see the Reopen function).
func (ww *wrappedWriter) Reopen(ctx context.Context) (FileWriter, error) {
	r, ok := ww.fw.(Reopener)
	if !ok {
		return nil, ErrUnsupported
	}
	return ww.w.open(ctx, ww.path, r.Reopen)
}

func (ww *wrappedWriter) Cancel(ctx context.Context) error {
	return ww.w.fail("cancel", ww.path, ww.finish(ctx, ww.fw.Cancel))
}
