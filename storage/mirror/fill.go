package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
)

// fillBuffer is how much of a blob body is read at a time.
const fillBuffer = 256 << 10

// fills are the blob fetches under way, one per repository and digest.
type fills struct {
	mu sync.Mutex
	m  map[fillKey]*fill
}

// fillKey names a fetch: per repository, as the upstream is asked for
// the blob in that repository; sharing a fetch across repositories would
// hand one repository's blob to a client of another that the upstream
// never authorized.
type fillKey struct {
	repo string
	d    digest.Digest
}

// fill is one upstream fetch of a blob. The body goes to a spool file as
// it arrives and clients read the spool behind it. A client is never
// given the last byte of a blob before the whole has been checked against
// its digest, so no client ends up with a complete, wrong blob. Once the
// fetch has ended, the spool is written to storage as an upload, which
// publishes the blob only when its digest is verified again.
type fill struct {
	m     *Mirror
	src   *source
	key   fillKey
	d     digest.Digest
	start time.Time
	spool *os.File
	// ready is closed once the size is known or the fetch failed.
	ready chan struct{}
	size  int64
	// ended is closed when the fetch has ended (see finish).
	ended chan struct{}

	mu       sync.Mutex
	written  int64
	done     bool  // the body was read to its end
	verified bool  // and matched the digest
	err      error // the fetch failed
	changed  chan struct{}
	refs     int // open readers, the fetch and the store each hold one
}

// joinFill returns the fetch of d into r under way, or starts one from
// r's upstream. The caller holds a reference until it closes the reader
// it opens, or calls release. A nil fill means the blob arrived in
// storage meanwhile.
func (m *Mirror) joinFill(ctx context.Context, r *repository, d digest.Digest) (*fill, error) {
	key := fillKey{r.Name(), d}
	if f := m.fills.join(key); f != nil {
		return f, nil
	}
	// None under way: one may have finished since the caller looked in
	// storage, and it is retired only once the blob is stored.
	if _, err := r.Repository.StatBlob(ctx, d); err == nil {
		return nil, nil
	}
	m.fills.mu.Lock()
	defer m.fills.mu.Unlock()
	if f, ok := m.fills.m[key]; ok {
		f.hold()
		return f, nil
	}
	spool, err := os.CreateTemp(m.spool, "berth-mirror-")
	if err != nil {
		return nil, fmt.Errorf("mirror: spool: %w", err)
	}
	// Unlinked at once: the open file lives while readers hold it, and
	// nothing is left behind by a crash.
	_ = os.Remove(spool.Name())
	f := &fill{
		m: m, src: r.src, d: d, start: time.Now(), spool: spool, ready: make(chan struct{}),
		ended: make(chan struct{}), size: -1, key: key, changed: make(chan struct{}), refs: 3,
	}
	m.fills.m[key] = f
	m.work.Go(func() { f.fetch(r.remote) })
	return f, nil
}

// join takes a reference on the fill of key, if there is one.
func (fs *fills) join(key fillKey) *fill {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.m[key]
	if !ok {
		return nil
	}
	f.hold()
	return f
}

// hold takes a reference on the fill (see release).
func (f *fill) hold() {
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
}

// filling reports whether a fetch of key is under way.
func (fs *fills) filling(key fillKey) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	_, ok := fs.m[key]
	return ok
}

// fetch reads the upstream's body into the spool. It does not depend on
// any client: it runs until the body ends, fails, or no byte arrives for
// the upstream's timeout.
func (f *fill) fetch(remote string) {
	defer f.release()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idle := time.AfterFunc(f.src.up.timeout, cancel)
	defer idle.Stop()
	resp, err := f.src.up.blob(ctx, remote, f.d)
	if err != nil {
		if ctx.Err() != nil {
			// The idle timer, not the transport's own, ran out first.
			err = f.src.up.fail("GET blob "+f.d.String(), fmt.Errorf("no answer in %s: %w", f.src.up.timeout, context.DeadlineExceeded))
		}
		f.finish(err)
		close(f.ready)
		f.m.work.Go(func() { f.store(ctx) }) // to end the store's reference
		return
	}
	defer resp.Body.Close()
	if resp.ContentLength >= 0 {
		f.size = resp.ContentLength
		close(f.ready)
	}
	f.m.work.Go(func() { f.store(context.Background()) })
	h := f.d.Algorithm().Hash()
	buf := make([]byte, fillBuffer)
	var off int64
	for {
		idle.Reset(f.src.up.timeout)
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := f.spool.WriteAt(buf[:n], off); err != nil {
				f.finish(fmt.Errorf("mirror: spool: %w", err))
				break
			}
			h.Write(buf[:n])
			off += int64(n)
			f.src.stats.bytes.Add(int64(n))
			f.advance(off)
		}
		if rerr == io.EOF {
			got := digest.NewDigest(f.d.Algorithm(), h)
			switch {
			case f.size >= 0 && off != f.size:
				f.finish(f.src.up.denied(fmt.Sprintf("blob %s: %d bytes, %d announced", f.d, off, f.size)))
			case got != f.d:
				f.finish(f.src.up.denied(fmt.Sprintf("blob %s: the bytes have digest %s", f.d, got)))
			default:
				f.finish(nil)
			}
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				rerr = fmt.Errorf("no data for %s: %w", f.src.up.timeout, context.DeadlineExceeded)
			}
			f.finish(f.src.up.fail("reading blob "+f.d.String(), rerr))
			break
		}
	}
	if f.size < 0 {
		f.size = off
		close(f.ready)
	}
}

// advance makes the first n bytes of the spool readable.
func (f *fill) advance(n int64) {
	f.mu.Lock()
	f.written = n
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// finish ends the fetch: verified when err is nil.
func (f *fill) finish(err error) {
	f.mu.Lock()
	f.done = true
	f.verified = err == nil
	f.err = err
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	close(f.ended)
	if err != nil {
		f.m.log.Warn("blob fetch failed", "digest", f.d, "upstream", f.src.RemoteURL, "err", err)
	}
}

// store writes the spool to storage as an upload, which verifies the
// digest again before it publishes, then retires the fill: later requests
// find the blob in storage.
//
// It starts once the fetch has ended and verified the blob, and only
// m.stores of them run at once: storing (hashing again, copying, syncing)
// costs as much CPU and disk as fetching, and run beside the fetches it
// slowed every client of a cold pull down (BenchmarkColdPull: ~320 ms a
// pull against ~170 ms). Meanwhile the fill stays registered, so new
// requests are served from the spool and the upstream is asked once.
func (f *fill) store(ctx context.Context) {
	defer f.release()
	defer f.retire()
	<-f.ended
	<-f.ready // the size is set
	f.mu.Lock()
	failed := f.err
	f.mu.Unlock()
	if failed != nil {
		return
	}
	f.m.stores <- struct{}{}
	defer func() { <-f.m.stores }()
	// The download has ended: all of the store is storage's own work,
	// which the write timeout bounds. Cleanup is not bounded by it.
	cctx, cancel := context.WithTimeout(ctx, f.src.WriteTimeout)
	defer cancel()
	repo := f.key.repo
	up, err := f.m.reg.Mirrored(repo).NewUpload(cctx)
	if err != nil {
		f.m.log.Error("mirror fill not stored", "digest", f.d, "err", err)
		return
	}
	defer up.Close(ctx) // a no-op after Commit or Cancel
	if as, ok := up.(storage.AlgorithmSetter); ok {
		if err := as.SetAlgorithm(f.d.Algorithm()); err != nil {
			_ = up.Cancel(ctx)
			return
		}
	}
	_, err = io.Copy(up, io.NewSectionReader(f.spool, 0, f.size))
	if dl, _ := cctx.Deadline(); err == nil && !time.Now().Before(dl) {
		// Past the timeout nothing is stored. Asked of the clock: the
		// context is done only once its timer has run, which a busy
		// machine delays, and a driver call given a done context may
		// still go through.
		err = fmt.Errorf("mirror: store: %w", context.DeadlineExceeded)
	}
	if err != nil {
		_ = up.Cancel(ctx)
		f.m.log.Error("mirror fill not stored", "digest", f.d, "err", err)
		return
	}
	desc, err := up.Commit(cctx, f.d)
	if err != nil {
		f.m.log.Error("mirror fill not stored", "digest", f.d, "err", err)
		return
	}
	f.m.expire(cctx, f.src, repo, f.d, false)
	if f.m.fill != nil {
		f.m.fill(ctx, Filled{Upstream: f.src.RemoteURL, Repository: repo, Descriptor: desc})
	}
	f.m.log.Info("blob fetched", "repo", repo, "upstream", f.src.RemoteURL, "digest", f.d, "bytes", desc.Size)
}

// retire removes the fill from those under way.
func (f *fill) retire() {
	f.m.fills.mu.Lock()
	if f.m.fills.m[f.key] == f {
		delete(f.m.fills.m, f.key)
	}
	f.m.fills.mu.Unlock()
}

// release drops one reference; the last one closes the spool.
func (f *fill) release() {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	f.mu.Unlock()
	if last {
		f.spool.Close()
	}
}

// fillReader reads a fill's spool as the bytes arrive. It is the
// storage.Blob a client is served while the blob is fetched.
type fillReader struct {
	f      *fill
	ctx    context.Context // the client's request
	pos    int64
	closed bool
}

func (r *fillReader) Read(p []byte) (int, error) {
	f := r.f
	for {
		f.mu.Lock()
		avail := f.written
		if !f.verified && f.size > 0 && avail >= f.size {
			avail = f.size - 1
		}
		done, err, changed := f.done, f.err, f.changed
		f.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if r.pos < avail {
			n := int64(len(p))
			if n > avail-r.pos {
				n = avail - r.pos
			}
			got, rerr := f.spool.ReadAt(p[:n], r.pos)
			r.pos += int64(got)
			if rerr == io.EOF && got > 0 {
				rerr = nil
			}
			return got, rerr
		}
		if done && r.pos >= avail {
			return 0, io.EOF
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *fillReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.f.size
	}
	if offset < 0 {
		return 0, errors.New("mirror: seek before start")
	}
	r.pos = offset
	return offset, nil
}

// Open implements storage.Blob: the bytes come from the fill's spool, on
// local disk, which has nothing to reach before a response starts; the
// upstream's failures come as they happen, as for any fetch.
func (r *fillReader) Open(offset int64) error {
	_, err := r.Seek(offset, io.SeekStart)
	return err
}

func (r *fillReader) Close() error {
	if !r.closed {
		r.closed = true
		r.f.release()
	}
	return nil
}

func (r *fillReader) Descriptor() storage.Descriptor {
	return storage.Descriptor{MediaType: "application/octet-stream", Digest: r.f.d, Size: r.f.size}
}

func (r *fillReader) ModTime() time.Time { return r.f.start }

func (r *fillReader) File() *os.File { return nil }
