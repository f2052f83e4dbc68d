package inmemory

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// upload is an unfinished write, kept apart from the tree so that nothing
// shows at its path before Commit.
type upload struct {
	data    []byte
	started time.Time
}

var errClosed = errors.New("writer already committed, cancelled or closed")

// Writer implements driver.Driver.
func (d *Driver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	up := d.uploads[path]
	if append {
		if up == nil {
			return nil, driver.ErrNotFound
		}
	} else {
		up = &upload{started: time.Now()}
		d.uploads[path] = up
	}
	return &writer{d: d, path: path, up: up, size: int64(len(up.data))}, nil
}

// Unfinished implements driver.UploadLister.
func (d *Driver) Unfinished(ctx context.Context, dir string) (map[string]time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := map[string]time.Time{}
	for p, up := range d.uploads {
		if dir == "/" || strings.HasPrefix(p, dir+"/") {
			out[p] = up.started
		}
	}
	return out, nil
}

type writer struct {
	d    *Driver
	path string
	up   *upload
	size int64
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errClosed
	}
	w.d.mu.Lock()
	w.up.data = append(w.up.data, p...)
	w.d.mu.Unlock()
	w.size += int64(len(p))
	return len(p), nil
}

func (w *writer) Size() int64 { return w.size }

// Close keeps what was written for a later Writer(path, true).
func (w *writer) Close() error {
	w.done = true
	return nil
}

func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if w.d.uploads[w.path] != w.up {
		// Replaced by a fresh writer or deleted: this write is void.
		return driver.ErrNotFound
	}
	if err := w.d.put(w.path, w.up.data, time.Now()); err != nil {
		return err
	}
	delete(w.d.uploads, w.path)
	w.done = true
	return nil
}

func (w *writer) Cancel(ctx context.Context) error {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if w.d.uploads[w.path] == w.up {
		delete(w.d.uploads, w.path)
	}
	w.done = true
	return nil
}
