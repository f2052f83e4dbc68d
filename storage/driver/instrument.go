package driver

import (
	"context"
	"io"
	"net/http"
	"os"
	"time"
)

// Observer hears of every operation an instrumented driver runs, for
// metrics and tracing. Begin is called as op starts on path; the context it
// returns is the one the driver runs with (so a span it holds is the
// parent of the backend's own), and the function it returns is called
// once with the operation's result.
//
// op is the name Wrap uses in a *PathError ("reader", "stat", "commit", …).
type Observer interface {
	Begin(ctx context.Context, driver, op, path string) (context.Context, func(error))
}

// Observers combines several observers into one, each hearing every
// operation in order. Nil observers are skipped.
func Observers(obs ...Observer) Observer {
	var list multiObserver
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	if len(list) == 1 {
		return list[0]
	}
	return list
}

type multiObserver []Observer

func (m multiObserver) Begin(ctx context.Context, driver, op, path string) (context.Context, func(error)) {
	ends := make([]func(error), len(m))
	for i, o := range m {
		ctx, ends[i] = o.Begin(ctx, driver, op, path)
	}
	return ctx, func(err error) {
		// Last begun, first ended, so nested spans close in order.
		for i := len(ends) - 1; i >= 0; i-- {
			ends[i](err)
		}
	}
}

// Instrument returns d with every operation reported to o. A nil o returns
// d unchanged.
//
// When d came from Wrap (as Open's result does), the instrumentation goes
// inside the wrapper and the result is wrapped again: paths are still
// checked once, before o hears of them, and errors are still tagged. Like
// Wrap's result, the instrumented driver implements every optional
// interface and falls back the same way where d lacks one, so
// instrumenting hides nothing. Writes to a FileWriter are not reported one
// by one (there is one per chunk of a blob); its Close, Commit and Cancel
// are.
func Instrument(d Driver, o Observer) Driver {
	if o == nil {
		return d
	}
	if w, ok := d.(*wrapped); ok {
		out := *w
		out.d = &instrumented{d: w.d, o: o}
		return &out
	}
	return &instrumented{d: d, o: o}
}

type instrumented struct {
	d Driver
	o Observer
}

var (
	_ Walker        = (*instrumented)(nil)
	_ Redirector    = (*instrumented)(nil)
	_ ContentPutter = (*instrumented)(nil)
	_ ScratchPutter = (*instrumented)(nil)
	_ Creator       = (*instrumented)(nil)
	_ FileOpener    = (*instrumented)(nil)
	_ UploadLister  = (*instrumented)(nil)
	_ PartSizer     = (*instrumented)(nil)
	_ DirTimer      = (*instrumented)(nil)
	_ PageLister    = (*instrumented)(nil)
	_ FreshWriter   = (*instrumented)(nil)
	_ FileStater    = (*instrumented)(nil)
	_ ParentKeeper  = (*instrumented)(nil)
)

// Unwrap returns the driver Instrument was given.
func (in *instrumented) Unwrap() Driver { return in.d }

func (in *instrumented) Name() string { return in.d.Name() }

func (in *instrumented) DirTimes() bool { return HasDirTimes(in.d) }

func (in *instrumented) RacyCreate() bool { return !AtomicCreate(in.d) }

func (in *instrumented) PartSize() int64 {
	if p, ok := in.d.(PartSizer); ok {
		return p.PartSize()
	}
	return 0
}

func (in *instrumented) begin(ctx context.Context, op, path string) (context.Context, func(error)) {
	return in.o.Begin(ctx, in.d.Name(), op, path)
}

func (in *instrumented) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	ctx, end := in.begin(ctx, "reader", path)
	// Only opening the reader is timed: reading is paced by the client.
	r, err := in.d.Reader(ctx, path, offset)
	end(err)
	return r, err
}

func (in *instrumented) Writer(ctx context.Context, path string, append bool) (FileWriter, error) {
	octx, end := in.begin(ctx, "writer", path)
	fw, err := in.d.Writer(octx, path, append)
	end(err)
	if err != nil {
		return nil, err
	}
	return &instrumentedWriter{FileWriter: fw, in: in, ctx: ctx, path: path}, nil
}

// NewWriter starts a write with the driver's FreshWriter when it has one,
// else with Writer (see the NewWriter function).
func (in *instrumented) NewWriter(ctx context.Context, path string) (FileWriter, error) {
	octx, end := in.begin(ctx, "writer", path)
	fw, err := NewWriter(octx, in.d, path)
	end(err)
	if err != nil {
		return nil, err
	}
	return &instrumentedWriter{FileWriter: fw, in: in, ctx: ctx, path: path}, nil
}

func (in *instrumented) Stat(ctx context.Context, path string) (FileInfo, error) {
	ctx, end := in.begin(ctx, "stat", path)
	fi, err := in.d.Stat(ctx, path)
	end(err)
	return fi, err
}

// StatFile describes a file with the driver's FileStater when it has one,
// else with Stat (see the StatFile function).
func (in *instrumented) StatFile(ctx context.Context, path string) (FileInfo, error) {
	ctx, end := in.begin(ctx, "stat", path)
	fi, err := StatFile(ctx, in.d, path)
	end(err)
	return fi, err
}

func (in *instrumented) List(ctx context.Context, dir string) ([]string, error) {
	ctx, end := in.begin(ctx, "list", dir)
	names, err := in.d.List(ctx, dir)
	end(err)
	return names, err
}

func (in *instrumented) ListPage(ctx context.Context, dir, after string, n int) ([]string, bool, error) {
	ctx, end := in.begin(ctx, "list", dir)
	names, more, err := ListPage(ctx, in.d, dir, after, n)
	end(err)
	return names, more, err
}

func (in *instrumented) Move(ctx context.Context, src, dst string) error {
	ctx, end := in.begin(ctx, "move", src)
	err := in.d.Move(ctx, src, dst)
	end(err)
	return err
}

func (in *instrumented) Delete(ctx context.Context, path string) error {
	ctx, end := in.begin(ctx, "delete", path)
	err := in.d.Delete(ctx, path)
	end(err)
	return err
}

// DeleteKeepParent deletes path with the driver's ParentKeeper when it
// has one, else with Delete (see the DeleteKeepParent function).
func (in *instrumented) DeleteKeepParent(ctx context.Context, path string) error {
	ctx, end := in.begin(ctx, "delete", path)
	err := DeleteKeepParent(ctx, in.d, path)
	end(err)
	return err
}

func (in *instrumented) Walk(ctx context.Context, root string, fn WalkFunc) error {
	ctx, end := in.begin(ctx, "walk", root)
	var err error
	if wk, ok := in.d.(Walker); ok {
		err = wk.Walk(ctx, root, fn)
	} else {
		err = walkList(ctx, in.d, root, fn)
	}
	end(err)
	return err
}

func (in *instrumented) PutContent(ctx context.Context, path string, content []byte) error {
	ctx, end := in.begin(ctx, "putcontent", path)
	err := PutContent(ctx, in.d, path, content)
	end(err)
	return err
}

func (in *instrumented) PutScratch(ctx context.Context, path string, content []byte) error {
	ctx, end := in.begin(ctx, "putscratch", path)
	err := PutScratch(ctx, in.d, path, content)
	end(err)
	return err
}

func (in *instrumented) Create(ctx context.Context, path string, content []byte) error {
	ctx, end := in.begin(ctx, "create", path)
	err := Create(ctx, in.d, path, content)
	end(err)
	return err
}

func (in *instrumented) RedirectURL(r *http.Request, path string) (string, error) {
	rd, ok := in.d.(Redirector)
	if !ok {
		return "", nil
	}
	ctx, end := in.begin(r.Context(), "redirect", path)
	u, err := rd.RedirectURL(r.WithContext(ctx), path)
	end(err)
	return u, err
}

func (in *instrumented) OpenFile(ctx context.Context, path string) (*os.File, error) {
	fo, ok := in.d.(FileOpener)
	if !ok {
		return nil, ErrUnsupported
	}
	ctx, end := in.begin(ctx, "openfile", path)
	f, err := fo.OpenFile(ctx, path)
	end(err)
	return f, err
}

func (in *instrumented) Unfinished(ctx context.Context, dir string) (map[string]time.Time, error) {
	ul, ok := in.d.(UploadLister)
	if !ok {
		return nil, ErrUnsupported
	}
	ctx, end := in.begin(ctx, "unfinished", dir)
	m, err := ul.Unfinished(ctx, dir)
	end(err)
	return m, err
}

// instrumentedWriter reports the steps of a write that reach the backend;
// Write and Size are the driver writer's own, through embedding.
type instrumentedWriter struct {
	FileWriter
	in   *instrumented
	ctx  context.Context // Writer's, for Close, which takes none
	path string
}

func (w *instrumentedWriter) Close() error {
	_, end := w.in.begin(w.ctx, "close", w.path)
	err := w.FileWriter.Close()
	end(err)
	return err
}

func (w *instrumentedWriter) CloseShared() error {
	sc, ok := w.FileWriter.(SharedCloser)
	if !ok {
		return ErrUnsupported
	}
	_, end := w.in.begin(w.ctx, "close", w.path)
	err := sc.CloseShared()
	end(err)
	return err
}

// Expect passes the hint on; it sends nothing (see Expecter).
func (w *instrumentedWriter) Expect(n int64) { Expect(w.FileWriter, n) }

func (w *instrumentedWriter) Commit(ctx context.Context) error {
	ctx, end := w.in.begin(ctx, "commit", w.path)
	err := w.FileWriter.Commit(ctx)
	end(err)
	return err
}

func (w *instrumentedWriter) CommitTo(ctx context.Context, path string) error {
	cm, ok := w.FileWriter.(CommitMover)
	if !ok {
		return ErrUnsupported
	}
	ctx, end := w.in.begin(ctx, "commit", path)
	err := cm.CommitTo(ctx, path)
	end(err)
	return err
}

// Reopen reopens the driver's writer when it can, and returns
// ErrUnsupported otherwise (see the Reopen function).
func (w *instrumentedWriter) Reopen(ctx context.Context) (FileWriter, error) {
	r, ok := w.FileWriter.(Reopener)
	if !ok {
		return nil, ErrUnsupported
	}
	octx, end := w.in.begin(ctx, "writer", w.path)
	fw, err := r.Reopen(octx)
	end(err)
	if err != nil {
		return nil, err
	}
	return &instrumentedWriter{FileWriter: fw, in: w.in, ctx: ctx, path: w.path}, nil
}

func (w *instrumentedWriter) Cancel(ctx context.Context) error {
	ctx, end := w.in.begin(ctx, "cancel", w.path)
	err := w.FileWriter.Cancel(ctx)
	end(err)
	return err
}
