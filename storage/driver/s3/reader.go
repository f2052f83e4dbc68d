package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// One GET from S3 is one TCP stream, held to tens of MB/s over a real
// network. A reader of a file larger than a chunk therefore fetches the
// chunks after the first as ranges, several at a time, into buffers, and
// hands them out in order while the first one streams. Every range is
// pinned to the first response's ETag, so a file replaced meanwhile fails
// the read rather than mixing two files, and a range that comes back short
// or fails fails the read at that point: the caller sees an error, never
// bytes that are not the file's.

var errShortRange = errors.New("range response shorter than asked")

// rangeReader reads [off, size) of one object.
type rangeReader struct {
	d     *Driver
	key   string
	etag  *string
	size  int64
	chunk int64
	next  int64 // start of the next range not yet asked for

	cur  io.ReadCloser // the body being read: the first response, or a buffered range
	left int64         // bytes cur still owes

	queue []*fetch // ranges asked for, in order
	held  int      // buffers taken from d.readMemory
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

// openRanges starts reading the object at key from offset. Objects no
// larger than a chunk, and readers with readconcurrency 1, cost one GET.
func (d *Driver) openRanges(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: d.bucket, Key: aws.String(key)}
	parallel := d.cfg.readConcurrency > 1
	switch {
	case parallel:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+d.cfg.chunkSize-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := d.c.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	if !parallel {
		return out.Body, nil
	}
	size, ok := totalSize(aws.ToString(out.ContentRange))
	n := aws.ToInt64(out.ContentLength)
	if !ok || offset+n >= size {
		return out.Body, nil // all of it is in this response
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &rangeReader{
		d: d, key: key, etag: out.ETag, size: size, chunk: d.cfg.chunkSize, next: offset + n,
		cur: out.Body, left: n, ctx: rctx, cancel: cancel,
	}
	return r, nil
}

// totalSize reads the size after the slash of a Content-Range.
func totalSize(cr string) (int64, bool) {
	i := strings.LastIndexByte(cr, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(cr[i+1:], 10, 64)
	return n, err == nil
}

// fill asks for more ranges while fewer than readconcurrency are on the
// wire and readmemory allows a buffer. A response being streamed (the
// first one, or one fetched without a buffer) holds a connection of its
// own; a buffered range being handed out holds none, so while one is read
// readconcurrency ranges are fetched behind it: with one fewer, a reader
// whose client keeps up spends its time waiting on readconcurrency-1
// streams.
func (r *rangeReader) fill() {
	r.ahead = true
	limit := r.d.cfg.readConcurrency
	if _, buffered := r.cur.(*bufBody); !buffered && r.cur != nil {
		limit--
	}
	for r.next < r.size && len(r.queue) < limit && r.d.readMemory.TryAcquire(1) {
		r.held++
		f := &fetch{off: r.next, n: min(r.chunk, r.size-r.next), buf: r.d.bufs.Get(), done: make(chan struct{})}
		r.next += f.n
		r.queue = append(r.queue, f)
		go r.get(f)
	}
}

func (r *rangeReader) get(f *fetch) {
	defer close(f.done)
	out, err := r.d.c.GetObject(r.ctx, &s3.GetObjectInput{
		Bucket: r.d.bucket, Key: aws.String(r.key), IfMatch: r.etag,
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", f.off, f.off+f.n-1)),
	})
	if err != nil {
		f.err = err
		return
	}
	defer out.Body.Close()
	f.buf = f.buf[:f.n]
	if _, err := io.ReadFull(out.Body, f.buf); err != nil {
		f.err = fmt.Errorf("%w: bytes %d-%d: %w", errShortRange, f.off, f.off+f.n-1, err)
	}
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, r.err
	}
	for r.err == nil {
		if r.left > 0 {
			n, err := r.cur.Read(p[:min(int64(len(p)), r.left)])
			r.left -= int64(n)
			if !r.ahead {
				if r.read += int64(n); r.read >= r.chunk/4 {
					r.fill()
				}
			}
			if err == io.EOF && r.left > 0 {
				err = fmt.Errorf("%w: %d bytes missing", errShortRange, r.left)
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
func (r *rangeReader) advance() error {
	if r.cur != nil {
		_ = r.cur.Close()
		r.cur = nil
	}
	if len(r.queue) > 0 {
		f := r.queue[0]
		<-f.done
		r.queue = r.queue[1:]
		if f.err != nil {
			r.d.bufs.Put(f.buf)
			r.release(1)
			return f.err
		}
		r.cur, r.left = &bufBody{r: r, buf: f.buf, b: f.buf}, f.n
		r.fill()
		return nil
	}
	if r.next >= r.size {
		return io.EOF
	}
	n := min(r.chunk, r.size-r.next)
	out, err := r.d.c.GetObject(r.ctx, &s3.GetObjectInput{
		Bucket: r.d.bucket, Key: aws.String(r.key), IfMatch: r.etag,
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", r.next, r.next+n-1)),
	})
	if err != nil {
		return err
	}
	r.next += n
	r.cur, r.left = out.Body, n
	r.fill()
	return nil
}

func (r *rangeReader) release(n int) {
	r.held -= n
	r.d.readMemory.Release(int64(n))
}

// Close stops the ranges in flight and gives their buffers back.
func (r *rangeReader) Close() error {
	r.cancel()
	if r.cur != nil {
		_ = r.cur.Close()
		r.cur = nil
	}
	for _, f := range r.queue {
		<-f.done
		r.d.bufs.Put(f.buf)
		r.release(1)
	}
	r.queue = nil
	if r.err == nil {
		r.err = errors.New("reader closed")
	}
	return nil
}

// bufBody serves a fetched range and returns its buffer when closed.
type bufBody struct {
	r   *rangeReader
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
		b.r.d.bufs.Put(b.buf)
		b.r.release(1)
		b.buf = nil
	}
	return nil
}
