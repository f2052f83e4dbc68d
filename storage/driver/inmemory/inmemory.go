// Package inmemory is a storage driver that keeps everything in the memory
// of one process: for tests and trials, not for data anyone wants to keep.
// It follows the semantics of an object store: a directory exists while a
// committed file lies below it, and unfinished writes are invisible to List,
// Stat and Walk.
package inmemory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// Name is the name the driver registers under.
const Name = "inmemory"

func init() {
	driver.Register(Name, func(_ context.Context, params driver.Params) (driver.Driver, error) {
		if err := checkParams(params); err != nil {
			return nil, err
		}
		return New(), nil
	})
	driver.RegisterCheck(Name, checkParams)
}

func checkParams(params driver.Params) error {
	if len(params) > 0 {
		return fmt.Errorf("inmemory takes no parameters, got %q", slices.Sorted(maps.Keys(params)))
	}
	return nil
}

// Driver keeps files in a tree in memory. It is safe for concurrent use.
// Its zero value is not usable; call New.
type Driver struct {
	mu      sync.RWMutex
	root    *node
	uploads map[string]*upload // unfinished writes by path
}

// node is a directory (children non-nil) or a committed file. A file's data
// is never changed once committed, so readers use it without the lock.
type node struct {
	children map[string]*node
	data     []byte
	modTime  time.Time
}

func (n *node) isDir() bool { return n.children != nil }

func newDir(t time.Time) *node { return &node{children: map[string]*node{}, modTime: t} }

var (
	_ driver.Walker       = (*Driver)(nil)
	_ driver.UploadLister = (*Driver)(nil)
	_ driver.Creator      = (*Driver)(nil)
)

// New returns an empty driver. Wrap it with driver.Wrap (driver.Open does)
// before use: it trusts that every path it is given is valid.
func New() *Driver {
	return &Driver{root: newDir(time.Now()), uploads: map[string]*upload{}}
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// components splits a valid path into its components; "/" has none.
func components(path string) []string {
	if path == "/" {
		return nil
	}
	return strings.Split(path[1:], "/")
}

// lookup returns the node at path, or nil. The caller holds d.mu.
func (d *Driver) lookup(path string) *node {
	n := d.root
	for _, c := range components(path) {
		if !n.isDir() {
			return nil
		}
		n = n.children[c]
		if n == nil {
			return nil
		}
	}
	return n
}

// Reader implements driver.Driver.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.RLock()
	n := d.lookup(path)
	d.mu.RUnlock()
	if n == nil || n.isDir() {
		return nil, driver.ErrNotFound
	}
	if offset > int64(len(n.data)) {
		return nil, driver.ErrInvalidOffset
	}
	return io.NopCloser(bytes.NewReader(n.data[offset:])), nil
}

// Stat implements driver.Driver.
func (d *Driver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return driver.FileInfo{}, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := d.lookup(path)
	if n == nil {
		return driver.FileInfo{}, driver.ErrNotFound
	}
	return info(path, n), nil
}

func info(path string, n *node) driver.FileInfo {
	return driver.FileInfo{Path: path, Size: int64(len(n.data)), ModTime: n.modTime, IsDir: n.isDir()}
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, dir string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := d.lookup(dir)
	if n == nil || !n.isDir() {
		return nil, driver.ErrNotFound
	}
	out := make([]string, 0, len(n.children))
	for name := range n.children {
		out = append(out, driver.Join(dir, name))
	}
	return out, nil
}

// Walk implements driver.Walker. It holds the lock only while it reads one
// directory, so fn may call the driver (to delete what it finds, say).
func (d *Driver) Walk(ctx context.Context, root string, fn driver.WalkFunc) error {
	d.mu.RLock()
	n := d.lookup(root)
	d.mu.RUnlock()
	if n == nil || !n.isDir() {
		return driver.ErrNotFound
	}
	return d.walk(ctx, root, fn)
}

func (d *Driver) walk(ctx context.Context, dir string, fn driver.WalkFunc) error {
	d.mu.RLock()
	n := d.lookup(dir)
	var entries []driver.FileInfo
	if n != nil && n.isDir() {
		for _, name := range slices.Sorted(maps.Keys(n.children)) {
			entries = append(entries, info(driver.Join(dir, name), n.children[name]))
		}
	}
	d.mu.RUnlock()
	for _, fi := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			if errors.Is(err, driver.ErrSkipDir) {
				continue
			}
			return err
		}
		if fi.IsDir {
			if err := d.walk(ctx, fi.Path, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Move implements driver.Driver.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.lookup(src)
	if n == nil || n.isDir() {
		return driver.ErrNotFound
	}
	if src == dst {
		return nil
	}
	now := time.Now()
	if err := d.put(dst, n.data, now); err != nil {
		return err
	}
	d.remove(src, now)
	return nil
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Unfinished writes below a deleted directory go with it, as their
	// files would on a filesystem; one at path itself is not the file.
	for p := range d.uploads {
		if path == "/" || strings.HasPrefix(p, path+"/") {
			delete(d.uploads, p)
		}
	}
	if path == "/" {
		if len(d.root.children) == 0 {
			return driver.ErrNotFound
		}
		d.root = newDir(time.Now())
		return nil
	}
	if d.lookup(path) == nil {
		return driver.ErrNotFound
	}
	d.remove(path, time.Now())
	return nil
}

// put stores data as the file at path, creating its parent directories.
// The caller holds d.mu for writing.
func (d *Driver) put(path string, data []byte, now time.Time) error {
	comps := components(path)
	n := d.root
	for i, c := range comps[:len(comps)-1] {
		child := n.children[c]
		if child == nil {
			child = newDir(now)
			n.children[c] = child
		} else if !child.isDir() {
			return fmt.Errorf("%s is a file, not a directory", "/"+strings.Join(comps[:i+1], "/"))
		}
		n.modTime = now
		n = child
	}
	last := comps[len(comps)-1]
	if old := n.children[last]; old != nil && old.isDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	n.children[last] = &node{data: slices.Clip(data), modTime: now}
	n.modTime = now
	return nil
}

// remove unlinks the existing node at path (not "/") and every directory
// above it that is left empty, as an object store has no empty directories.
// The caller holds d.mu for writing.
func (d *Driver) remove(path string, now time.Time) {
	comps := components(path)
	chain := []*node{d.root}
	for _, c := range comps[:len(comps)-1] {
		chain = append(chain, chain[len(chain)-1].children[c])
	}
	for i := len(comps) - 1; i >= 0; i-- {
		parent := chain[i]
		delete(parent.children, comps[i])
		parent.modTime = now
		if len(parent.children) > 0 || i == 0 {
			break
		}
	}
}

// Create implements driver.Creator.
func (d *Driver) Create(ctx context.Context, path string, content []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lookup(path) != nil {
		return driver.ErrExist
	}
	return d.put(path, bytes.Clone(content), time.Now())
}
