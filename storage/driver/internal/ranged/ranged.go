// Package ranged reads one object from an object store as several ranges
// at a time, for the drivers whose reads Berth serves itself (redirects
// disabled or impossible).
//
// One GET from an object store is one TCP stream, held to tens of MB/s
// over a real network. A reader of an object larger than a chunk
// therefore fetches the chunks after the first as ranges, several at a
// time, into buffers, and hands them out in order while the first one
// streams. Every range is of one pinned version of the object (an S3 or
// Azure ETag, a GCS generation), so an object replaced meanwhile fails the
// read rather than mixing two objects, and a range that comes back short
// or fails fails the read at that point: the caller sees an error, never
// bytes that are not the object's.
//
// Memory: range buffers come from the driver's pool, and every reader of
// the driver draws them from one shared budget (readmemory); when it is
// spent, a reader fetches its next range only as it reaches it, streamed
// like the first.
package ranged

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sync/semaphore"

	"github.com/berth-registry/berth/storage/driver/internal/partbuf"
)

// The drivers' defaults and bounds for readconcurrency and readmemory.
const (
	DefaultConcurrency = 8
	MaxConcurrency     = 64
	DefaultMemory      = 128 << 20
)

// ErrShortRange marks a range whose response ended before its last byte.
var ErrShortRange = errors.New("range response shorter than asked")

// OpenFunc opens the n bytes at off of the pinned version of the object.
// It fails, rather than return another version's bytes, once the object
// was replaced.
type OpenFunc func(ctx context.Context, off, n int64) (io.ReadCloser, error)

// Reads is what one driver's readers share: the range size, the ranges a
// reader keeps on the wire, and the buffers all of them may hold.
type Reads struct {
	chunk       int64
	concurrency int
	bufs        *partbuf.Pool       // buffers of chunk bytes
	memory      *semaphore.Weighted // one unit a buffer
}

// New returns the shared state of a driver's readers: ranges of bufs'
// buffer size, concurrency of them on the wire per reader, and at most
// buffers buffers held by all readers together.
func New(bufs *partbuf.Pool, concurrency int, buffers int64) *Reads {
	return &Reads{chunk: int64(bufs.Size()), concurrency: concurrency, bufs: bufs, memory: semaphore.NewWeighted(buffers)}
}

// Parallel reports whether reads fetch ranges ahead at all
// (readconcurrency above 1). Without, a driver reads with one GET.
func (s *Reads) Parallel() bool { return s.concurrency > 1 }

// Chunk is the size of a range: the first request of a parallel read asks
// for this many bytes.
func (s *Reads) Chunk() int64 { return s.chunk }

// Reader reads [off, size) of an object. first is the response to the
// first range, n bytes from off, which the driver opened itself (it
// learned the version to pin and size from it); open fetches the rest.
// When first holds all of it, first is returned as it is.
func (s *Reads) Reader(ctx context.Context, first io.ReadCloser, off, n, size int64, open OpenFunc) io.ReadCloser {
	if off+n >= size {
		return first
	}
	rctx, cancel := context.WithCancel(ctx)
	return &reader{s: s, open: open, size: size, next: off + n, cur: first, left: n, ctx: rctx, cancel: cancel}
}

// TotalSize reads the object's size after the slash of a Content-Range
// (S3's and Azure's answers to a range).
func TotalSize(contentRange string) (int64, bool) {
	i := strings.LastIndexByte(contentRange, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(contentRange[i+1:], 10, 64)
	return n, err == nil
}

// reader reads [off, size) of one object.
type reader struct {
	s    *Reads
	open OpenFunc
	size int64
	next int64 // start of the next range not yet asked for

	cur  io.ReadCloser // the body being read: the first response, or a buffered range
	left int64         // bytes cur still owes

	queue []*fetch // ranges asked for, in order
	// ahead is set once the read went far enough into the first range to
	// be worth fetching ahead: a client asking for a small range of a big
	// blob costs one GET, not readconcurrency chunks.
	ahead  bool
	read   int64 // bytes read from the first range
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

// fetch is one range being read into a buffer.
type fetch struct {
	off, n int64
	buf    []byte
	done   chan struct{}
	err    error
}

// fill asks for more ranges while fewer than readconcurrency are on the
// wire and readmemory allows a buffer. A response being streamed (the
// first one, or one fetched without a buffer) holds a connection of its
// own; a buffered range being handed out holds none, so while one is read
// readconcurrency ranges are fetched behind it: with one fewer, a reader
// whose client keeps up spends its time waiting on readconcurrency-1
// streams.
func (r *reader) fill() {
	r.ahead = true
	limit := r.s.concurrency
	if _, buffered := r.cur.(*bufBody); !buffered && r.cur != nil {
		limit--
	}
	for r.next < r.size && len(r.queue) < limit && r.s.memory.TryAcquire(1) {
		f := &fetch{off: r.next, n: min(r.s.chunk, r.size-r.next), buf: r.s.bufs.Get(), done: make(chan struct{})}
		r.next += f.n
		r.queue = append(r.queue, f)
		go r.get(f)
	}
}

func (r *reader) get(f *fetch) {
	defer close(f.done)
	body, err := r.open(r.ctx, f.off, f.n)
	if err != nil {
		f.err = err
		return
	}
	defer body.Close()
	f.buf = f.buf[:f.n]
	if _, err := io.ReadFull(body, f.buf); err != nil {
		f.err = fmt.Errorf("%w: bytes %d-%d: %w", ErrShortRange, f.off, f.off+f.n-1, err)
	}
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, r.err
	}
	for r.err == nil {
		if r.left > 0 {
			n, err := r.cur.Read(p[:min(int64(len(p)), r.left)])
			r.left -= int64(n)
			if !r.ahead {
				if r.read += int64(n); r.read >= r.s.chunk/4 {
					r.fill()
				}
			}
			if err == io.EOF && r.left > 0 {
				err = fmt.Errorf("%w: %d bytes missing", ErrShortRange, r.left)
			}
			if err != nil && err != io.EOF {
				r.err = err
				return n, err
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err := r.advance(); err != nil {
			r.err = err
		}
	}
	return 0, r.err
}

// advance moves to the next range: the oldest queued one once it arrived,
// or a GET of its own when none is queued (readmemory spent).
func (r *reader) advance() error {
	if r.cur != nil {
		_ = r.cur.Close()
		r.cur = nil
	}
	if len(r.queue) > 0 {
		f := r.queue[0]
		<-f.done
		r.queue = r.queue[1:]
		if f.err != nil {
			r.giveBack(f.buf)
			return f.err
		}
		r.cur, r.left = &bufBody{r: r, buf: f.buf, b: f.buf}, f.n
		r.fill()
		return nil
	}
	if r.next >= r.size {
		return io.EOF
	}
	n := min(r.s.chunk, r.size-r.next)
	body, err := r.open(r.ctx, r.next, n)
	if err != nil {
		return err
	}
	r.next += n
	r.cur, r.left = body, n
	r.fill()
	return nil
}

// giveBack returns a buffer to the pool and its unit to readmemory.
func (r *reader) giveBack(buf []byte) {
	r.s.bufs.Put(buf)
	r.s.memory.Release(1)
}

// Close stops the ranges in flight and gives their buffers back.
func (r *reader) Close() error {
	r.cancel()
	if r.cur != nil {
		_ = r.cur.Close()
		r.cur = nil
	}
	for _, f := range r.queue {
		<-f.done
		r.giveBack(f.buf)
	}
	r.queue = nil
	if r.err == nil {
		r.err = errors.New("reader closed")
	}
	return nil
}

// bufBody serves a fetched range and returns its buffer when closed.
type bufBody struct {
	r   *reader
	buf []byte // as taken from the pool
	b   []byte // what is left to read
}

func (b *bufBody) Read(p []byte) (int, error) {
	if len(b.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.b)
	b.b = b.b[n:]
	return n, nil
}

func (b *bufBody) Close() error {
	if b.buf != nil {
		b.r.giveBack(b.buf)
		b.buf = nil
	}
	return nil
}

// Status is what a test may check of a reader between reads.
type Status struct {
	// Queued is the ranges fetched or being fetched ahead.
	Queued int
	// Buffered is set while the reader hands out a range it fetched into
	// a buffer, rather than a response as it streams.
	Buffered bool
}

// Inspect reports the status of r, and false when r does not fetch ranges
// ahead (one GET served it all).
func Inspect(r io.Reader) (Status, bool) {
	rr, ok := r.(*reader)
	if !ok {
		return Status{}, false
	}
	_, buffered := rr.cur.(*bufBody)
	return Status{Queued: len(rr.queue), Buffered: buffered}, true
}
