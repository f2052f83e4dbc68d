package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// PutContent stores content at path in one step, through the driver's
// ContentPutter when it has one.
func PutContent(ctx context.Context, d Driver, path string, content []byte) error {
	if p, ok := d.(ContentPutter); ok {
		return p.PutContent(ctx, path, content)
	}
	w, err := d.Writer(ctx, path, false)
	if err != nil {
		return err
	}
	if _, err := w.Write(content); err != nil {
		_ = w.Cancel(ctx)
		return err
	}
	if err := w.Commit(ctx); err != nil {
		_ = w.Cancel(ctx)
		return err
	}
	return w.Close()
}

// PutScratch stores content at path with the driver's ScratchPutter when it
// has one, else durably with PutContent.
func PutScratch(ctx context.Context, d Driver, path string, content []byte) error {
	if p, ok := d.(ScratchPutter); ok {
		return p.PutScratch(ctx, path, content)
	}
	return PutContent(ctx, d, path, content)
}

// Create stores content at path only if nothing is there (ErrExist
// otherwise), atomically, with the driver's Creator. A driver without one
// cannot offer the exclusion a lease needs: ErrUnsupported, rather than a
// Stat-then-Put that two instances could both win.
func Create(ctx context.Context, d Driver, path string, content []byte) error {
	if c, ok := d.(Creator); ok {
		return c.Create(ctx, path, content)
	}
	return ErrUnsupported
}

// CommitTo commits the write fw, opened on d for src, at dst: in one step
// when the writer is a CommitMover, else with Commit then Move.
func CommitTo(ctx context.Context, d Driver, fw FileWriter, src, dst string) error {
	if cm, ok := fw.(CommitMover); ok {
		err := cm.CommitTo(ctx, dst)
		if !errors.Is(err, ErrUnsupported) {
			return err
		}
	}
	if err := fw.Commit(ctx); err != nil {
		return err
	}
	return d.Move(ctx, src, dst)
}

// CloseShared closes fw in the form Distribution continues when it can
// (see SharedCloser), else as Close does.
func CloseShared(fw FileWriter) error {
	if sc, ok := fw.(SharedCloser); ok {
		if err := sc.CloseShared(); !errors.Is(err, ErrUnsupported) {
			return err
		}
	}
	return fw.Close()
}

// Expect tells fw that n bytes come before its next Close or Commit, when
// it can use that (see Expecter).
func Expect(fw FileWriter, n int64) {
	if e, ok := fw.(Expecter); ok {
		e.Expect(n)
	}
}

// GetContent reads the whole file at path, refusing files over limit bytes
// so a stray large file cannot exhaust memory.
func GetContent(ctx context.Context, d Driver, path string, limit int64) ([]byte, error) {
	r, err := d.Reader(ctx, path, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: file is larger than %d bytes", path, limit)
	}
	return b, nil
}

// Walk walks the tree below root with the driver's Walker, or with List and
// Stat when it has none. See Walker for the order and ErrSkipDir.
func Walk(ctx context.Context, d Driver, root string, fn WalkFunc) error {
	if w, ok := d.(Walker); ok {
		return w.Walk(ctx, root, fn)
	}
	err := walkList(ctx, d, root, fn)
	if err == errStopWalk {
		return nil
	}
	return err
}

var errStopWalk = fmt.Errorf("stop walk")

func walkList(ctx context.Context, d Driver, dir string, fn WalkFunc) error {
	children, err := d.List(ctx, dir)
	if err != nil {
		return err
	}
	slices.SortFunc(children, func(a, b string) int {
		return strings.Compare(a[strings.LastIndexByte(a, '/')+1:], b[strings.LastIndexByte(b, '/')+1:])
	})
	for _, child := range children {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Stat(ctx, child)
		if err != nil {
			// Deleted between List and Stat: nothing to walk.
			if isNotFound(err) {
				continue
			}
			return err
		}
		if err := fn(fi); err != nil {
			if err == ErrSkipDir {
				continue
			}
			return err
		}
		if fi.IsDir {
			if err := walkList(ctx, d, child, fn); err != nil && !isNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// StatFile describes the committed file at path, with the driver's
// FileStater when it has one, else with Stat; a directory is ErrNotFound.
func StatFile(ctx context.Context, d Driver, path string) (FileInfo, error) {
	if f, ok := d.(FileStater); ok {
		return f.StatFile(ctx, path)
	}
	fi, err := d.Stat(ctx, path)
	if err == nil && fi.IsDir {
		return FileInfo{}, &PathError{Op: "stat", Path: path, Driver: d.Name(), Err: ErrNotFound}
	}
	return fi, err
}

// DeleteKeepParent deletes path with the driver's ParentKeeper when it has
// one, leaving path's directory in place, else with Delete.
func DeleteKeepParent(ctx context.Context, d Driver, path string) error {
	if k, ok := d.(ParentKeeper); ok {
		return k.DeleteKeepParent(ctx, path)
	}
	return d.Delete(ctx, path)
}

// NewWriter starts a write at path, where the caller knows no write was
// ever started: with the driver's FreshWriter when it has one, else with
// Writer(ctx, path, false).
func NewWriter(ctx context.Context, d Driver, path string) (FileWriter, error) {
	if f, ok := d.(FreshWriter); ok {
		return f.NewWriter(ctx, path)
	}
	return d.Writer(ctx, path, false)
}

// Reopen goes on with the write at path that fw, closed, left: from fw's
// memory when it is a Reopener (see there for what the caller vouches
// for), else as Writer(ctx, path, true) resumes it.
func Reopen(ctx context.Context, d Driver, fw FileWriter, path string) (FileWriter, error) {
	if r, ok := fw.(Reopener); ok {
		nw, err := r.Reopen(ctx)
		if !errors.Is(err, ErrUnsupported) {
			return nw, err
		}
	}
	return d.Writer(ctx, path, true)
}
