// Package driver defines what a storage backend must do for Berth: store
// bytes at slash-separated paths. A driver knows nothing of blobs, manifests
// or HTTP; the storage package builds the registry's content model on top.
//
// Paths are absolute ("/docker/registry/v2/..."), made of components that
// match [A-Za-z0-9._-]+ and are not "." or "..". The root is "/". Use
// ValidPath to check one; the wrapper returned by New checks every call.
package driver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// Driver stores bytes at paths. Directories exist implicitly while they hold
// a file, as on an object store.
type Driver interface {
	// Name is the name the driver registered under ("filesystem", "s3", …).
	Name() string

	// Reader streams the committed file at path from offset. An offset at the
	// end of the file gives an empty reader; past the end, ErrInvalidOffset.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)

	// Writer opens a writer for path. With append false it starts afresh,
	// discarding any unfinished write at path. With append true it resumes
	// the unfinished write left by an earlier writer's Close (possibly in
	// another process), and ErrNotFound means there is none.
	//
	// The writer works under ctx until Commit, Cancel or Close returns:
	// Write and Close, which take no context, use it, and cancelling it
	// stops a call that hangs. The wrapper Open returns hands drivers one
	// without the caller's cancellation and cancels it at the write
	// timeout (see Timeouts).
	Writer(ctx context.Context, path string, append bool) (FileWriter, error)

	// Stat describes a committed file or a directory.
	Stat(ctx context.Context, path string) (FileInfo, error)

	// List returns the full paths of the direct children of dir, in no
	// particular order. A directory that does not exist is ErrNotFound.
	List(ctx context.Context, dir string) ([]string, error)

	// Move renames the file src to dst, replacing dst. It is atomic where
	// the backend allows it; the source is gone when Move returns nil.
	Move(ctx context.Context, src, dst string) error

	// Delete removes path: a file, or a directory and everything below it.
	// Deleting what does not exist is ErrNotFound.
	Delete(ctx context.Context, path string) error
}

// FileWriter streams a file. Nothing is visible at its path until Commit.
// Close without Commit keeps what was written, so Writer(ctx, path, true)
// resumes it, on another instance too. After Commit, Cancel or Close the
// writer may not be written to.
type FileWriter interface {
	io.WriteCloser
	// Size is the number of bytes written so far, including those written
	// by the writers this one resumed.
	Size() int64
	// Commit makes the file visible at its path, durable on stable storage.
	Commit(ctx context.Context) error
	// Cancel discards everything written, leaving nothing behind.
	Cancel(ctx context.Context) error
}

// FileInfo describes a file or directory.
type FileInfo struct {
	Path    string
	Size    int64 // zero for directories
	ModTime time.Time
	IsDir   bool
}

// Walker is implemented by drivers that list a tree faster than one List
// call per directory. Use the Walk function, which falls back to List.
type Walker interface {
	// Walk calls fn for every file and directory below root (not root
	// itself), parents before children, siblings in lexical order. fn may
	// return ErrSkipDir for a directory to skip what is below it, or any
	// other error to stop the walk and have Walk return it.
	Walk(ctx context.Context, root string, fn WalkFunc) error
}

// WalkFunc is called by Walk for each entry.
type WalkFunc func(FileInfo) error

// Redirector is implemented by drivers that can send a client straight to
// the backend (a presigned URL). An empty URL with a nil error means "serve
// it yourself".
type Redirector interface {
	RedirectURL(r *http.Request, path string) (string, error)
}

// ContentPutter is implemented by drivers that store a small file in one
// atomic request. Use the PutContent function, which falls back to Writer.
type ContentPutter interface {
	PutContent(ctx context.Context, path string, content []byte) error
}

// ScratchPutter is implemented by drivers for which durability costs a
// sync that can be skipped: PutScratch stores content that need not
// survive a crash (an upload session's start time and digest state, which
// a resumed upload can do without). After a crash the file may be absent,
// older, or empty; readers must treat content they cannot parse as lost.
// Without a crash it is what PutContent would have stored. Use the
// PutScratch function, which falls back to PutContent.
type ScratchPutter interface {
	PutScratch(ctx context.Context, path string, content []byte) error
}

// Creator is implemented by drivers that can store a small file only
// where nothing is yet, in one atomic step: of several Creates of one
// path, on any number of instances, exactly one succeeds and the others
// get ErrExist. Leases (one writer per upload session, one garbage
// collection) are built on it. Every built-in driver has it: the file
// system links a finished temporary file into place, the object stores
// send a conditional write (If-None-Match: *, ifGenerationMatch=0). Use
// the Create function, which refuses drivers without it.
type Creator interface {
	Create(ctx context.Context, path string, content []byte) error
}

// RacyCreator is implemented by drivers whose Create cannot be atomic
// (Swift: a conditional PUT checks before it writes, and the newest write
// wins): two Creates that overlap closely may both succeed. Use the
// AtomicCreate function, which sees through wrappers.
type RacyCreator interface {
	RacyCreate() bool
}

// AtomicCreate tells whether d's Create lets exactly one of several
// racing creates win.
func AtomicCreate(d Driver) bool {
	if _, ok := d.(Creator); !ok {
		return false
	}
	r, ok := d.(RacyCreator)
	return !ok || !r.RacyCreate()
}

// CommitMover is implemented by FileWriters that can commit their write
// at another path than the one they were opened for, in one step: the
// file system renames its unfinished write straight into place instead of
// committing it beside the session and moving it. Use the CommitTo
// function, which falls back to Commit and Move.
type CommitMover interface {
	CommitTo(ctx context.Context, path string) error
}

// SharedCloser is implemented by FileWriters that can close leaving the
// unfinished write in the form CNCF Distribution's driver for the same
// backend continues with its own Writer(path, true), besides their own:
// the file system shows the unfinished bytes at path itself (a hard link,
// no copy), S3 sends the bytes past the last full part as a last, short
// part of the multipart upload. Writer(path, true) resumes a write left
// either way, and one Distribution appended to since. Use the CloseShared
// function, which falls back to Close.
type SharedCloser interface {
	CloseShared() error
}

// Reopener is implemented by FileWriters that, once closed, can go on
// with their write from what they remember instead of asking the backend
// where it stands (an object store's listings of uploads and parts cost a
// round trip each, for every request of a chunked push). The caller must
// know that Close succeeded and that nothing wrote at the path since:
// Berth's upload sessions know it from their lease. A writer is reopened
// at most once. Use the Reopen function, which falls back to Writer.
type Reopener interface {
	Reopen(ctx context.Context) (FileWriter, error)
}

// Expecter is implemented by FileWriters that send a write in parts and
// plan them better knowing how many bytes come before the next Close or
// Commit (a request's Content-Length): the S3 writer sends a 16 MiB chunk
// as three parts at once instead of a full part, then a tail after it.
// The number is a plan, not a promise: the writer stores exactly the
// bytes it is given, more or fewer. Use the Expect function, which does
// nothing for other writers.
type Expecter interface {
	Expect(n int64)
}

// FileStater is implemented by drivers for which Stat asks twice to tell
// a missing file from a directory (an object store sends a HEAD of the
// key, then lists the prefix when there is no object). StatFile describes
// the committed file at path in one request, and answers ErrNotFound for a
// directory as for nothing. Use the StatFile function, which falls back to
// Stat.
type FileStater interface {
	StatFile(ctx context.Context, path string) (FileInfo, error)
}

// FreshWriter is implemented by drivers that, to start a write afresh,
// first look for an unfinished one at the path to discard it (an object
// store lists the key's multipart uploads and deletes its state object:
// two round trips). NewWriter starts a write at a path where the caller
// knows no write was ever started, as a name it has just drawn at random,
// without that search. Use the NewWriter function, which falls back to
// Writer.
type FreshWriter interface {
	NewWriter(ctx context.Context, path string) (FileWriter, error)
}

// ParentKeeper is implemented by drivers that keep directories as entries
// of their own and, on Delete, remove those it leaves empty (the file
// system, so that its directories come and go as an object store's
// prefixes do). DeleteKeepParent deletes path as Delete does but leaves
// the directory holding path in place, even empty: for a directory whose
// entries come and go all day, such as a repository's _uploads (a session
// a push), which Delete would remove with the last session for the next
// push to make again. Use the DeleteKeepParent function, which falls back
// to Delete.
type ParentKeeper interface {
	DeleteKeepParent(ctx context.Context, path string) error
}

// FileOpener is implemented by drivers that can hand out an *os.File for a
// committed file, so net/http can serve it with sendfile.
type FileOpener interface {
	OpenFile(ctx context.Context, path string) (*os.File, error)
}

// UploadLister is implemented by drivers that keep unfinished writes
// somewhere List does not show (multipart uploads, uncommitted blocks), so
// maintenance can find and cancel abandoned ones.
type UploadLister interface {
	// Unfinished returns the paths below dir that have an unfinished write,
	// with the time that write started.
	Unfinished(ctx context.Context, dir string) (map[string]time.Time, error)
}

// PartSizer is implemented by drivers that send a write to the backend in
// parts of a fixed size: on Close, a tail shorter than PartSize is kept
// aside and sent again by the next writer, so chunks of at least PartSize
// are what a chunked upload should use. Drivers without a minimum do not
// implement it.
type PartSizer interface {
	PartSize() int64
}

// DirTimer is implemented by drivers whose directories carry a
// modification time that moves whenever an entry is created or removed in
// them, as on a local file system, so that a listing may be reused while
// the time is unchanged. Object stores keep no time for a prefix. Use the
// HasDirTimes function, which sees through wrappers.
type DirTimer interface {
	DirTimes() bool
}

// HasDirTimes tells whether d's directories carry such a time.
func HasDirTimes(d Driver) bool {
	t, ok := d.(DirTimer)
	return ok && t.DirTimes()
}

// Errors a driver returns, wrapped in a *PathError. Check them with errors.Is.
var (
	ErrNotFound      = errors.New("path not found")
	ErrInvalidPath   = errors.New("invalid path")
	ErrInvalidOffset = errors.New("invalid offset")
	ErrUnsupported   = errors.New("operation not supported by driver")
	// ErrExist is returned by Create when something is at the path.
	ErrExist = errors.New("path already exists")
	// ErrSkipDir is returned by a WalkFunc to skip a directory's contents.
	ErrSkipDir = errors.New("skip this directory")
)

// PathError records the operation, path and driver of a failure.
type PathError struct {
	Op     string
	Path   string
	Driver string
	Err    error
}

func (e *PathError) Error() string {
	return e.Driver + ": " + e.Op + " " + e.Path + ": " + e.Err.Error()
}

func (e *PathError) Unwrap() error { return e.Err }

// ObjectKeyer is implemented by object-store drivers: the key under which
// the bucket stores path, for a CDN in front of the bucket that serves
// the same keys. Find it with Find, as wrappers do not pass it on.
type ObjectKeyer interface {
	ObjectKey(path string) string
}
