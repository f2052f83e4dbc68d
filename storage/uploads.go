package storage

import (
	"context"
	"encoding"
	"encoding/json"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// upload streams a blob into _uploads/<id>/data through a running digest.
//
// The digest state is persisted next to the data at every Close
// (hashstates/<alg>/<offset>, the encoding.BinaryMarshaler form of Go's
// sha256/sha512, as Distribution writes it), so the next request, on any
// instance, resumes hashing where this one stopped and Commit never re-reads
// the blob. Only when that state is missing (a crash between the data and
// the state, a sha512 digest for bytes hashed with sha256) does Commit read
// the data back, once.
type upload struct {
	repo      *repository
	id        string
	startedAt time.Time
	// fw is the session's write; nil in a new session until its first
	// byte, or until Close or Commit needs it, when open makes it. A
	// session started by a POST without a body keeps no write (see
	// start), so opening one there would only make a file and its
	// directories on a filesystem and remove them again in the same
	// request.
	fw   driver.FileWriter
	open func() (driver.FileWriter, error)

	alg    digest.Algorithm
	h      hash.Hash // nil when the running digest was lost
	hashed int64     // bytes fed to h
	ended  bool      // after Close, Commit or Cancel
	// saved is set once startedat is in storage, which makes the session
	// resumable. A new upload writes it at its first Close: an upload
	// pushed and committed in one request never needs it.
	saved bool
	// committed is set once the write is committed (beside the session,
	// to be re-read, or straight at the blob's place) or handed to
	// CommitTo; until then Commit may still drop it.
	committed bool
	// lease makes this request the session's only writer, on every
	// instance, until it ends; nil for a new session, which no one else
	// knows of yet.
	lease *lease
	// lost is why the lease lapsed under this request, once it did: the
	// session may be another request's, and nothing of it is this one's
	// to write or delete.
	lost error
	// prevRelease is closed once the release of the request before this
	// one on this instance was written; nil when there is none to wait
	// for (see releaseLanded).
	prevRelease <-chan struct{}
	// sticky is set when the request's claim followed this instance's
	// own release on the session, or is the claim it kept: the client is
	// kept on this instance, and its next request likely comes here too
	// (uploadkeep.go).
	sticky bool
}

var _ AlgorithmSetter = (*upload)(nil)

// errUploadEnded is returned when a request uses an upload it already
// closed, committed or cancelled: a bug in the caller.
var errUploadEnded = &Error{Err: ErrUploadInvalid, Detail: "upload already closed"}

// NewUpload starts an upload session.
func (r *repository) NewUpload(ctx context.Context) (Upload, error) {
	id := newUploadID()
	startedAt := time.Now().UTC()
	// The session's keys make the repository, for the catalog.
	if err := r.reg.markRepository(ctx, r.name); err != nil {
		return nil, err
	}
	// The id was just drawn at random: nothing was ever written at its
	// data path, and an object store need not look for it. The write
	// is the request's, under its context, as it would be opened here.
	open := func() (driver.FileWriter, error) {
		return driver.NewWriter(ctx, r.driver(), uploadDataPath(r.name, id))
	}
	return &upload{repo: r, id: id, startedAt: startedAt, open: open, alg: digest.SHA256, h: digest.SHA256.Hash()}, nil
}

func (u *upload) ID() string           { return u.id }
func (u *upload) StartedAt() time.Time { return u.startedAt }

func (u *upload) Size() int64 {
	if u.fw == nil {
		return 0
	}
	return u.fw.Size()
}

// writer is the session's write, opened now if it has none yet. A
// failure leaves it unopened; the caller's Cancel removes what the try
// left of the session.
func (u *upload) writer() (driver.FileWriter, error) {
	if u.fw == nil {
		fw, err := u.open()
		if err != nil {
			return nil, wrapDriverErr("start upload", err)
		}
		u.fw = fw
	}
	return u.fw, nil
}

// SetAlgorithm hashes the upload with alg instead of sha256, so that a
// sha512 push is verified without re-reading it. It must come before the
// first byte.
func (u *upload) SetAlgorithm(alg digest.Algorithm) error {
	if !supportedAlgorithm(alg) {
		return &Error{Err: ErrUnsupportedDigest, Detail: "algorithm " + string(alg)}
	}
	if u.h != nil && u.alg == alg {
		return nil
	}
	if u.ended || u.hashed != 0 || u.Size() != 0 {
		return &Error{Err: ErrUploadInvalid, Detail: "the digest algorithm can only be chosen before the first byte"}
	}
	u.alg, u.h = alg, alg.Hash()
	return nil
}

var _ Expecter = (*upload)(nil)

// Expect passes the length of the bytes to come on to the driver's writer.
func (u *upload) Expect(n int64) {
	if u.ended || n <= 0 {
		return
	}
	// A write that cannot be opened fails the Write that follows.
	if fw, err := u.writer(); err == nil {
		driver.Expect(fw, n)
	}
}

func (u *upload) Write(p []byte) (int, error) {
	if u.ended {
		return 0, errUploadEnded
	}
	if u.lease != nil {
		// A request whose lease lapsed (its instance stalled) must not
		// write: another may hold the session by now.
		if err := u.holds(); err != nil {
			return 0, &Error{Err: ErrUploadInvalid, Detail: "upload session lost to another request: " + err.Error()}
		}
	}
	fw, err := u.writer()
	if err != nil {
		return 0, err
	}
	n, err := fw.Write(p)
	if u.h != nil {
		u.h.Write(p[:n])
		u.hashed += int64(n)
	}
	if err != nil {
		return n, wrapDriverErr("write upload", err)
	}
	return n, nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// ReadFrom copies src into the upload, hashing exactly the bytes the driver
// accepted, so the digest state matches the data even after a short write.
// It writes whole buffers: a request body arrives in pieces of a few KiB
// (a chunked body, as docker sends, in pieces no bigger than its chunks),
// and writing each piece as it came cost a system call, a driver slot and
// a lease check per piece. What was read is written before an error is
// returned, so a body cut short keeps every byte that arrived.
func (u *upload) ReadFrom(src io.Reader) (int64, error) {
	if u.ended {
		return 0, errUploadEnded
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		nr, rerr := fill(src, buf)
		if nr > 0 {
			nw, werr := u.Write(buf[:nr])
			total += int64(nw)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// fill reads from src until buf is full or a read fails (io.EOF
// included), and returns how much it read with that failure.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Close keeps what was written for a later ResumeUpload and records the
// digest state at its offset. Failing to record the state is not fatal:
// Commit then re-reads the data.
func (u *upload) Close(ctx context.Context) error {
	if u.ended {
		return nil
	}
	u.ended = true
	if u.lease != nil {
		if err := u.holds(); err != nil {
			// Closing would save the writer's state over that of the
			// request holding the session now. Left unclosed, the
			// writer is reclaimed with this request; the lapsed claim
			// tells the next request not to trust any digest state.
			u.lease.abandon()
			u.repo.reg.log.Warn("upload lease lapsed; this request's part is dropped", "repo", u.repo.name, "upload", u.id, "err", err)
			return &Error{Err: ErrUploadInvalid, Detail: "upload session lost to another request: " + err.Error()}
		}
	}
	distribution := u.repo.reg.opts.DistributionUploads
	if !u.saved && !distribution && u.Size() == 0 {
		return u.start(ctx)
	}
	if _, err := u.writer(); err != nil {
		return err
	}
	// The digest state goes with the release below, which vouches for
	// it, and nothing is released when Close fails. CNCF Distribution
	// reads it from a file of its own, saved beside the writer's Close
	// (on an object store, its last parts).
	size := u.fw.Size()
	hashState := u.hashState(size)
	closeWriter, saved := u.fw.Close, chan struct{}(nil)
	if distribution {
		saved = make(chan struct{})
		go func() {
			defer close(saved)
			u.saveHashState(ctx, size, hashState)
		}()
		closeWriter = func() error { return driver.CloseShared(u.fw) }
	}
	err := closeWriter()
	if saved != nil {
		<-saved
	}
	if err != nil {
		if u.lease != nil {
			u.lease.abandon()
		}
		return wrapDriverErr("close upload", err)
	}
	if s := u.fw.Size(); s != size {
		// Not a size the digest state was taken at.
		size, hashState = s, nil
	}
	if !u.saved {
		// After the data, so a resumable session always has its bytes;
		// the first claim on the session's lease records how this first
		// request left it.
		if err := driver.PutScratch(ctx, u.repo.driver(), uploadStartedAtPath(u.repo.name, u.id), []byte(u.startedAt.Format(time.RFC3339))); err != nil {
			return wrapDriverErr("start upload", err)
		}
		u.saved = true
		rec := leaseRecord{Owner: "new", Expires: u.startedAt, Released: true, Size: size}
		if hashState != nil {
			rec.Alg, rec.Digest = string(u.alg), hashState
		}
		first, _ := json.Marshal(rec)
		if err := driver.Create(ctx, u.repo.driver(), leaseClaimPath(uploadLeaseDir(u.repo.name, u.id), 1), first); err != nil {
			return wrapDriverErr("start upload", err)
		}
		u.repo.reg.putHint(u.repo.name, u.id, uploadHint{lease: leaseHint{gen: 1, rec: rec}, mem: u.remember(size, hashState)})
	}
	if u.lease != nil && !u.keep(ctx, size, hashState) {
		if err := u.releaseClaim(ctx, size, hashState); err != nil {
			return wrapDriverErr("close upload", err)
		}
	}
	return nil
}

// releaseClaim releases u's claim, once its bytes and digest state at size
// are stored: the release is what vouches for them. It is written while
// the client is answered (releaseLater): the hint for this instance's next
// request, and the hold, are handed over first, so that request claims the
// next number at once.
func (u *upload) releaseClaim(ctx context.Context, size int64, hashState []byte) error {
	return u.lease.releaseLater(ctx, size, u.alg, hashState, u.prevRelease, func(written <-chan struct{}) {
		u.repo.reg.trackRelease(u.repo.name, u.id, written)
		u.repo.reg.putHint(u.repo.name, u.id, uploadHint{
			lease: leaseHint{gen: u.lease.gen, rec: leaseRecord{Released: true, Size: size}, dir: u.lease.dir},
			mem:   u.remember(size, hashState),
		})
	})
}

// releaseLanded waits for the releases of the requests before this one
// on this instance that are still being written (upload.Close; each one's
// channel closes after those before it), and stops this request's own
// renewals, waiting for one under way: the session's directory is not
// removed under them, as a write would bring its claim back after the
// removal.
func (u *upload) releaseLanded(ctx context.Context) {
	if u.lease != nil {
		// The checkpoint of the request before, if not yet written, is
		// not: the session goes.
		u.lease.supersede()
		u.lease.stopKeepAlive()
	}
	if u.prevRelease == nil {
		return
	}
	select {
	case <-u.prevRelease:
	case <-ctx.Done():
	}
}

// start makes a new session that holds no bytes resumable with only what
// CNCF Distribution writes for one: its start time. Its write, which
// stored nothing, is dropped (on an object store, without a request), and
// the session's first bytes start another; nor is a claim made on its
// lease: the first request to write makes the first. That request, on
// this instance, creates it after the hint left here and goes on from the
// memory without reading anything back; on another, it finds no claim and
// no write, and starts both. Every request that writes claims first, so
// a session without a claim holds no bytes of Berth's.
func (u *upload) start(ctx context.Context) error {
	if u.fw != nil {
		if err := u.fw.Cancel(ctx); err != nil && !isNotFound(err) {
			u.repo.reg.log.Warn("empty upload write not dropped", "repo", u.repo.name, "upload", u.id, "err", err)
		}
	}
	if err := driver.PutScratch(ctx, u.repo.driver(), uploadStartedAtPath(u.repo.name, u.id), []byte(u.startedAt.Format(time.RFC3339))); err != nil {
		return wrapDriverErr("start upload", err)
	}
	u.saved = true
	u.repo.reg.putHint(u.repo.name, u.id, uploadHint{
		lease: leaseHint{gen: 0, rec: leaseRecord{Released: true}},
		mem:   &sessionMemory{},
	})
	return nil
}

// hashState is the running digest at size, marshalled, or nil when the
// digest does not cover exactly size bytes.
func (u *upload) hashState(size int64) []byte {
	if u.h == nil || size == 0 || u.hashed != size {
		return nil
	}
	m, ok := u.h.(encoding.BinaryMarshaler)
	if !ok {
		return nil
	}
	state, err := m.MarshalBinary()
	if err != nil {
		return nil
	}
	return state
}

// saveHashState records the digest state at size, for the next request.
// Failing to is not fatal: Commit then re-reads the data.
func (u *upload) saveHashState(ctx context.Context, size int64, state []byte) {
	if state == nil {
		return
	}
	if err := driver.PutScratch(ctx, u.repo.driver(), uploadHashStatePath(u.repo.name, u.id, u.alg, size), state); err != nil {
		u.repo.reg.log.Warn("upload digest state not saved", "repo", u.repo.name, "upload", u.id, "err", err)
	}
}

// Cancel discards the upload.
func (u *upload) Cancel(ctx context.Context) error {
	if u.lease != nil {
		defer u.lease.abandon()
		if !u.ended {
			_ = u.holds()
		}
		if u.lost != nil {
			// The session is another request's by now (this one
			// stalled past its lease): its files are not this one's to
			// delete.
			u.ended = true
			u.repo.reg.log.Warn("upload lease lapsed; the session is left to the request holding it", "repo", u.repo.name, "upload", u.id, "err", u.lost)
			return &Error{Err: ErrUploadInvalid, Detail: "upload session lost to another request: " + u.lost.Error()}
		}
	}
	if !u.ended {
		u.ended = true
		if u.fw != nil {
			if err := u.fw.Cancel(ctx); err != nil && !isNotFound(err) {
				u.repo.reg.log.Warn("upload cancel failed", "repo", u.repo.name, "upload", u.id, "err", err)
			}
		}
	}
	u.releaseLanded(ctx)
	return u.removeSession(ctx)
}

// removeSession deletes the session's directory once it ended. The
// repository's _uploads stays, even empty, where a driver keeps
// directories (driver.ParentKeeper): its next push would make it again.
// An empty _uploads makes no repository (holdsRepository). Purging,
// which removes sessions abandoned long ago, leaves nothing behind.
func (u *upload) removeSession(ctx context.Context) error {
	return deleted(driver.DeleteKeepParent(ctx, u.repo.driver(), uploadDir(u.repo.name, u.id)))
}
