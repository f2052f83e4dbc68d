package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// fileBlob is a blob the driver handed out as an *os.File, which net/http
// serves with sendfile.
type fileBlob struct {
	f       *os.File
	desc    Descriptor
	modTime time.Time
}

func (b *fileBlob) Read(p []byte) (int, error)                { return b.f.Read(p) }
func (b *fileBlob) Seek(off int64, whence int) (int64, error) { return b.f.Seek(off, whence) }
func (b *fileBlob) Close() error                              { return b.f.Close() }
func (b *fileBlob) Descriptor() Descriptor                    { return b.desc }
func (b *fileBlob) ModTime() time.Time                        { return b.modTime }
func (b *fileBlob) File() *os.File                            { return b.f }
func (b *fileBlob) Open(int64) error                          { return nil }

// readerBlob reads a blob through the driver. It opens a driver reader on
// the first Read at an offset its reader is not at (or ahead of that, by
// Open), so that http.ServeContent's probing seeks (to the end and back,
// for the size) cost nothing and a range request costs one ranged read.
type readerBlob struct {
	ctx     context.Context
	drv     driver.Driver
	path    string
	desc    Descriptor
	modTime time.Time

	off    int64
	rc     io.ReadCloser
	rcOff  int64 // where rc reads next
	closed bool
}

var errBlobClosed = errors.New("storage: blob is closed")

func (b *readerBlob) Descriptor() Descriptor { return b.desc }
func (b *readerBlob) ModTime() time.Time     { return b.modTime }
func (b *readerBlob) File() *os.File         { return nil }

func (b *readerBlob) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errBlobClosed
	}
	if b.off >= b.desc.Size {
		return 0, io.EOF
	}
	if err := b.Open(b.off); err != nil {
		return 0, err
	}
	n, err := b.rc.Read(p)
	b.off += int64(n)
	b.rcOff = b.off
	return n, err
}

// Open opens the driver's reader at offset unless it is open there
// already; the next Read at offset uses it. Called before a response
// starts, it makes a backend that is down fail the request rather than
// cut a 200 short.
func (b *readerBlob) Open(offset int64) error {
	if b.closed {
		return errBlobClosed
	}
	if b.rc != nil && b.rcOff == offset {
		return nil
	}
	if b.rc != nil {
		_ = b.rc.Close()
		b.rc = nil
	}
	rc, err := b.drv.Reader(b.ctx, b.path, offset)
	if err != nil {
		return fmt.Errorf("storage: reading blob %s: %w", b.desc.Digest, err)
	}
	b.rc, b.rcOff = rc, offset
	return nil
}

func (b *readerBlob) Seek(offset int64, whence int) (int64, error) {
	if b.closed {
		return 0, errBlobClosed
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.off + offset
	case io.SeekEnd:
		abs = b.desc.Size + offset
	default:
		return 0, fmt.Errorf("storage: seek: invalid whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("storage: seek: negative offset %d", abs)
	}
	b.off = abs
	return abs, nil
}

func (b *readerBlob) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.rc != nil {
		return b.rc.Close()
	}
	return nil
}
