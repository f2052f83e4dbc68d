package storage

import (
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
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
	fw        driver.FileWriter

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
}

// uploadLeaseTerm is how long a request holds its session between
// renewals, unless Options.UploadLease says otherwise. A request that
// dies (a killed instance) blocks the session for this long plus the
// lease skew; a live one renews every third of it.
const uploadLeaseTerm = time.Minute

// ErrUploadBusy is returned when another request, on this instance or
// another, is writing or committing the upload: one writer per session at
// a time, so two requests never interleave their bytes.
var ErrUploadBusy = errors.New("blob upload in use by another request")

// BusyError is the detail of ErrUploadBusy: Size is what the session
// held when its last request ended, for the client to resume from.
type BusyError struct {
	Size int64
}

func (e *BusyError) Error() string { return ErrUploadBusy.Error() }
func (e *BusyError) Unwrap() error { return ErrUploadBusy }

var _ AlgorithmSetter = (*upload)(nil)

// errUploadEnded is returned when a request uses an upload it already
// closed, committed or cancelled: a bug in the caller.
var errUploadEnded = &Error{Err: ErrUploadInvalid, Detail: "upload already closed"}

// NewUpload starts an upload session.
func (r *repository) NewUpload(ctx context.Context) (Upload, error) {
	id := newUploadID()
	startedAt := time.Now().UTC()
	fw, err := r.driver().Writer(ctx, uploadDataPath(r.name, id), false)
	if err != nil {
		_ = deleteIfExists(ctx, r.driver(), uploadDir(r.name, id))
		return nil, wrapDriverErr("start upload", err)
	}
	return &upload{repo: r, id: id, startedAt: startedAt, fw: fw, alg: digest.SHA256, h: digest.SHA256.Hash()}, nil
}

// ResumeUpload continues the upload id, started on this instance or another.
func (r *repository) ResumeUpload(ctx context.Context, id string) (Upload, error) {
	if !validUploadID(id) {
		return nil, &Error{Err: ErrUploadUnknown, Detail: "malformed upload id"}
	}
	b, err := driver.GetContent(ctx, r.driver(), uploadStartedAtPath(r.name, id), 64)
	if err != nil {
		if isNotFound(err) {
			return nil, ErrUploadUnknown
		}
		return nil, wrapDriverErr("resume upload", err)
	}
	startedAt, err := time.Parse(time.RFC3339, string(b))
	if err != nil {
		return nil, &Error{Err: ErrUploadInvalid, Detail: "corrupt upload start time"}
	}
	// Requests on this instance are kept apart here, before the store is
	// asked: exactly, on every backend (Swift's create is not atomic),
	// and without a round trip.
	unhold, ok := r.reg.holdSession(r.name, id)
	if !ok {
		return nil, r.busy(ctx, id)
	}
	l, prev, err := acquireLeaseAfter(ctx, r.driver(), uploadLeaseDir(r.name, id), r.reg.uploadLease(), r.reg.leaseSkew(), false, r.reg.takeHint(r.name, id))
	if err != nil {
		unhold()
		var he *heldError
		if errors.As(err, &he) {
			busy := &BusyError{}
			if he.prev != nil && he.prev.Released {
				busy.Size = he.prev.Size
			}
			return nil, busy
		}
		return nil, wrapDriverErr("resume upload", err)
	}
	l.onEnd = unhold
	l.keepAlive(ctx, 0)
	fw, err := r.driver().Writer(ctx, uploadDataPath(r.name, id), true)
	if err == nil && (prev == nil || !prev.Released) {
		fw, err = r.forkUpload(ctx, id, fw)
	}
	if isNotFound(err) {
		fw, err = r.adoptUpload(ctx, id)
	}
	if err != nil {
		_ = l.release(ctx, -1)
		return nil, wrapDriverErr("resume upload", err)
	}
	u := &upload{repo: r, id: id, startedAt: startedAt, fw: fw, alg: digest.SHA256, saved: true, lease: l}
	if err := u.loadHashState(ctx, prev); err != nil {
		_ = fw.Close()
		_ = l.release(ctx, -1)
		return nil, err
	}
	return u, nil
}

// errNoRelease: no request on the session ever ended in a way Berth
// recorded.
var errNoRelease = errors.New("storage: no request on the upload ended")

// releasedSize is the size the upload id held when the last request on it
// that ended cleanly ended: while a request writes, the session holds what
// the one before it left, in the claim before the current one.
func (r *repository) releasedSize(ctx context.Context, id string) (int64, error) {
	dir := uploadLeaseDir(r.name, id)
	gen, rec, err := currentClaim(ctx, r.driver(), dir)
	if err != nil {
		return 0, wrapDriverErr("stat upload", err)
	}
	for ; gen > 0; gen-- {
		if rec != nil && rec.Released {
			return rec.Size, nil
		}
		if gen > 1 {
			if rec, err = readClaim(ctx, r.driver(), dir, gen-1); err != nil {
				return 0, wrapDriverErr("stat upload", err)
			}
		}
	}
	return 0, errNoRelease
}

// holdSession marks the upload id of repository name as in use by a
// request of this instance; ok is false when another one holds it.
func (r *Registry) holdSession(name, id string) (unhold func(), ok bool) {
	key := name + "/" + id
	if _, loaded := r.sessions.LoadOrStore(key, struct{}{}); loaded {
		return nil, false
	}
	return func() { r.sessions.Delete(key) }, true
}

// busy is the error for a session another request holds, with the size
// the session had when its last request ended.
func (r *repository) busy(ctx context.Context, id string) error {
	busy := &BusyError{}
	if size, err := r.releasedSize(ctx, id); err == nil {
		busy.Size = size
	}
	return busy
}

// StatUpload tells how many bytes the upload id holds without opening it
// for writing, so that asking (GET) writes nothing: from what the last
// request on it recorded when it ended.
func (r *repository) StatUpload(ctx context.Context, id string) (size int64, err error) {
	if !validUploadID(id) {
		return 0, &Error{Err: ErrUploadUnknown, Detail: "malformed upload id"}
	}
	if _, err := r.driver().Stat(ctx, uploadStartedAtPath(r.name, id)); err != nil {
		if isNotFound(err) {
			return 0, ErrUploadUnknown
		}
		return 0, wrapDriverErr("stat upload", err)
	}
	gen, cur, err := currentClaim(ctx, r.driver(), uploadLeaseDir(r.name, id))
	if err != nil {
		return 0, wrapDriverErr("stat upload", err)
	}
	// A session whose last request never ended (its instance was killed)
	// holds more than any claim says once that claim lapsed: the bytes
	// that request wrote before it died. One whose last request failed
	// before it knew the size released it as unknown (-1). The client
	// resumes from what is stored, so the session is taken over below to
	// learn it.
	unknown := gen > 0 && (cur.Released && cur.Size < 0 || !cur.Released && !cur.live(time.Now(), r.reg.leaseSkew()))
	if !unknown {
		if size, err := r.releasedSize(ctx, id); !errors.Is(err, errNoRelease) {
			return size, err
		}
	}
	// A session no Berth request ended (one Distribution wrote during a
	// migration), or one whose last request died: only its writer knows.
	u, err := r.ResumeUpload(ctx, id)
	var busy *BusyError
	if errors.As(err, &busy) {
		return busy.Size, nil
	}
	if err != nil {
		return 0, err
	}
	defer u.Close(ctx)
	return u.Size(), nil
}

// forkUpload moves the upload id's bytes into a write of its own, for a
// request taking over a session whose last request never released it (its
// instance died or froze). A frozen request may still hold that request's
// writer, past its lease check; on the file system, a write through it
// would land in whatever file the old write becomes, including the blob
// this session publishes. So the old write is committed where it is and
// copied into a new one: whatever the frozen request still writes lands in
// a file this session drops. On an object store, the old multipart upload
// is completed and a late part to it fails. This costs a copy of the bytes
// so far, only after a crash or a freeze.
func (r *repository) forkUpload(ctx context.Context, id string, old driver.FileWriter) (driver.FileWriter, error) {
	if err := old.Commit(ctx); err != nil {
		_ = old.Close()
		return nil, err
	}
	r.reg.log.Info("upload taken over from a request that did not end; its bytes are copied", "repo", r.name, "upload", id, "bytes", old.Size())
	return r.adoptUpload(ctx, id)
}

// adoptUpload opens a writer for an upload with no unfinished write: one
// started but never written to (some drivers keep nothing for an empty
// write), or one CNCF Distribution wrote, whose drivers leave the bytes
// received so far as an ordinary file at data. Those bytes are copied into
// a fresh write, once, so a push that began on Distribution continues on
// Berth during a migration.
func (r *repository) adoptUpload(ctx context.Context, id string) (driver.FileWriter, error) {
	p := uploadDataPath(r.name, id)
	fw, err := r.driver().Writer(ctx, p, false)
	if err != nil {
		return nil, err
	}
	rc, err := r.driver().Reader(ctx, p, 0)
	if isNotFound(err) {
		return fw, nil
	}
	if err == nil {
		_, err = io.Copy(fw, rc)
		rc.Close()
	}
	if err != nil {
		_ = fw.Cancel(ctx)
		return nil, err
	}
	r.reg.log.Info("upload adopted from a committed data file", "repo", r.name, "upload", id, "bytes", fw.Size())
	return fw, nil
}

// loadHashState restores the running digest for the bytes already written.
//
// A saved digest state describes the bytes its request hashed, not
// necessarily the bytes stored: it is trusted only when the request before
// this one ended cleanly (it released the session's lease, so no one wrote
// after it) with the data at exactly the size the state is for. Anything
// else (a request that died or lost its lease mid-write, a session written
// by CNCF Distribution) leaves the running digest unknown, and Commit
// hashes the stored bytes themselves. So does every resumed upload on a
// backend without an atomic create (Swift), where two instances may both
// have held the session at once.
func (u *upload) loadHashState(ctx context.Context, prev *leaseRecord) error {
	size := u.fw.Size()
	if size == 0 {
		u.h = u.alg.Hash()
		return nil
	}
	if !driver.AtomicCreate(u.repo.driver()) {
		// Two requests on two instances may both have held the session
		// (Swift): a state's size says nothing of whose bytes are there.
		u.h = nil
		return nil
	}
	if prev == nil || !prev.Released || prev.Size != size {
		u.repo.reg.log.Info("upload digest state not trusted; commit will re-read the data",
			"repo", u.repo.name, "upload", u.id, "offset", size)
		u.h = nil
		return nil
	}
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		state, err := driver.GetContent(ctx, u.repo.driver(), uploadHashStatePath(u.repo.name, u.id, alg, size), 1024)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return wrapDriverErr("resume upload", err)
		}
		h := alg.Hash()
		um, ok := h.(encoding.BinaryUnmarshaler)
		if !ok || um.UnmarshalBinary(state) != nil {
			break
		}
		u.alg, u.h, u.hashed = alg, h, size
		return nil
	}
	u.repo.reg.log.Warn("upload digest state lost; commit will re-read the data",
		"repo", u.repo.name, "upload", u.id, "offset", size)
	u.h = nil
	return nil
}

func (u *upload) ID() string           { return u.id }
func (u *upload) Size() int64          { return u.fw.Size() }
func (u *upload) StartedAt() time.Time { return u.startedAt }

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
	if u.ended || u.hashed != 0 || u.fw.Size() != 0 {
		return &Error{Err: ErrUploadInvalid, Detail: "the digest algorithm can only be chosen before the first byte"}
	}
	u.alg, u.h = alg, alg.Hash()
	return nil
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
	n, err := u.fw.Write(p)
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
func (u *upload) ReadFrom(src io.Reader) (int64, error) {
	if u.ended {
		return 0, errUploadEnded
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		nr, rerr := src.Read(buf)
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
	if err := u.fw.Close(); err != nil {
		if u.lease != nil {
			u.lease.abandon()
		}
		return wrapDriverErr("close upload", err)
	}
	size := u.fw.Size()
	if !u.saved {
		// After the data, so a resumable session always has its bytes;
		// the first claim on the session's lease records how this first
		// request left it.
		if err := driver.PutScratch(ctx, u.repo.driver(), uploadStartedAtPath(u.repo.name, u.id), []byte(u.startedAt.Format(time.RFC3339))); err != nil {
			return wrapDriverErr("start upload", err)
		}
		u.saved = true
		rec := leaseRecord{Owner: "new", Expires: u.startedAt, Released: true, Size: size}
		first, _ := json.Marshal(rec)
		if err := driver.Create(ctx, u.repo.driver(), leaseClaimPath(uploadLeaseDir(u.repo.name, u.id), 1), first); err != nil {
			return wrapDriverErr("start upload", err)
		}
		u.repo.reg.putHint(u.repo.name, u.id, leaseHint{gen: 1, rec: rec})
	}
	u.saveHashState(ctx, size)
	if u.lease != nil {
		// After the digest state: the release is what vouches for it.
		if err := u.lease.release(ctx, size); err != nil {
			return wrapDriverErr("close upload", err)
		}
		u.repo.reg.putHint(u.repo.name, u.id, leaseHint{gen: u.lease.gen, rec: leaseRecord{Released: true, Size: size}})
	}
	return nil
}

// maxHints bounds the claims remembered for sessions whose next request
// never comes (abandoned pushes): past it, the next request reads the
// lease as another instance would.
const maxHints = 10000

// putHint remembers that this instance released the claim of hint on the
// upload id of repository name, so that the session's next request here
// takes the lease with one create instead of reading it first (three
// round trips on an object store, a fifth of a small push's time).
func (r *Registry) putHint(name, id string, h leaseHint) {
	if r.hintCount.Load() >= maxHints {
		return
	}
	if _, loaded := r.hints.Swap(name+"/"+id, h); !loaded {
		r.hintCount.Add(1)
	}
}

// takeHint returns and forgets the claim this instance last released on
// the upload, or nil.
func (r *Registry) takeHint(name, id string) *leaseHint {
	v, ok := r.hints.LoadAndDelete(name + "/" + id)
	if !ok {
		return nil
	}
	r.hintCount.Add(-1)
	h := v.(leaseHint)
	return &h
}

// saveHashState records the running digest at size, for the next request.
// Failing to is not fatal: Commit then re-reads the data.
func (u *upload) saveHashState(ctx context.Context, size int64) {
	if u.h == nil || size == 0 || u.hashed != size {
		return
	}
	m, ok := u.h.(encoding.BinaryMarshaler)
	if !ok {
		return
	}
	state, err := m.MarshalBinary()
	if err == nil {
		err = driver.PutScratch(ctx, u.repo.driver(), uploadHashStatePath(u.repo.name, u.id, u.alg, size), state)
	}
	if err != nil {
		u.repo.reg.log.Warn("upload digest state not saved", "repo", u.repo.name, "upload", u.id, "err", err)
	}
}

// holds tells whether the request still holds the session's lease, and
// remembers when it lapsed.
func (u *upload) holds() error {
	if u.lost == nil {
		u.lost = u.lease.valid()
	}
	return u.lost
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
		if err := u.fw.Cancel(ctx); err != nil && !isNotFound(err) {
			u.repo.reg.log.Warn("upload cancel failed", "repo", u.repo.name, "upload", u.id, "err", err)
		}
	}
	return deleteIfExists(ctx, u.repo.driver(), uploadDir(u.repo.name, u.id))
}

// Commit verifies the upload against want, publishes it in the global
// store (unless identical content is there already) and links it into the
// repository.
func (u *upload) Commit(ctx context.Context, want digest.Digest) (Descriptor, error) {
	if u.ended {
		return Descriptor{}, errUploadEnded
	}
	if err := validDigest(want); err != nil {
		// The client may retry with a proper digest: keep the upload.
		_ = u.Close(ctx)
		return Descriptor{}, err
	}
	u.ended = true
	if u.lease != nil {
		defer u.lease.abandon()
		// The lease is renewed while the commit runs; a lapsed one means
		// another request may have written since this one began.
		if err := u.holds(); err != nil {
			return Descriptor{}, &Error{Err: ErrUploadInvalid, Detail: "upload session lost to another request: " + err.Error()}
		}
	}
	size := u.fw.Size()
	r := u.repo
	var link <-chan error
	if u.h != nil && u.alg == want.Algorithm() && u.hashed == size {
		if got := digest.NewDigest(u.alg, u.h); got != want {
			_ = u.fw.Cancel(ctx)
			return Descriptor{}, u.mismatch(ctx, want, got)
		}
		// The write stays open: publish commits it straight to the
		// blob's place, or drops it when the content is there already.
		link = r.addLinkAsync(ctx, want)
	} else {
		u.committed = true
		if err := u.fw.Commit(ctx); err != nil {
			_ = u.discard(ctx)
			return Descriptor{}, wrapDriverErr("commit upload", err)
		}
		got, err := u.rehash(ctx, want.Algorithm(), size)
		if err != nil {
			_ = u.discard(ctx)
			return Descriptor{}, err
		}
		if got != want {
			return Descriptor{}, u.mismatch(ctx, want, got)
		}
		link = r.addLinkAsync(ctx, want)
	}
	deduped, perr := u.publish(ctx, want, size)
	if err := <-link; err != nil && perr == nil {
		perr = err
	}
	if perr == nil && !deduped {
		perr = u.checkPublished(ctx, want, size)
	}
	if perr == nil && deduped {
		perr = u.confirmDeduped(ctx, want, size)
	}
	if !u.committed {
		// Deduplicated, or failed: the write was not used.
		_ = u.fw.Cancel(ctx)
	}
	if perr != nil {
		_ = u.discard(ctx)
		return Descriptor{}, perr
	}
	if err := u.discard(ctx); err != nil {
		// The blob is published and linked: the leftovers are for
		// upload purging, not the client's concern.
		r.reg.log.Warn("upload leftovers not removed", "repo", r.name, "upload", u.id, "err", err)
	}
	r.reg.log.Info("blob committed", "repo", r.name, "digest", want, "bytes", size)
	return Descriptor{MediaType: blobMediaType, Digest: want, Size: size}, nil
}

// checkPublished makes sure a commit that outlived its lease published
// its own bytes. While the lease holds, no other request can have touched
// the session, so what was published is what was verified. A commit that
// froze past it (a stopped process, a hung disk) cannot tell: another
// request may have taken the session over, and the file this one renamed
// into the blob's place may be that request's. What is there is then read
// back, and removed with the link when it is not want.
func (u *upload) checkPublished(ctx context.Context, want digest.Digest, size int64) error {
	if u.lease == nil {
		return nil
	}
	lapsed := u.holds()
	if lapsed == nil {
		return nil
	}
	r := u.repo
	dst := blobDataPath(want)
	got, n, err := hashFile(ctx, r.driver(), dst, want.Algorithm())
	if err == nil && got == want && n == size {
		return nil
	}
	if err != nil && !isNotFound(err) {
		return wrapDriverErr("verify blob", err)
	}
	r.reg.log.Error("commit outlived its upload lease and published other bytes; removed", "repo", r.name, "upload", u.id, "digest", want, "bytes", n, "err", lapsed)
	r.reg.forgetBlob(want)
	if err := deleteIfExists(ctx, r.driver(), dst); err != nil {
		return wrapDriverErr("remove blob", err)
	}
	r.takeBackLink(ctx, layerLink, want)
	return &Error{Err: ErrUploadInvalid, Detail: "upload session lost to another request during the commit: " + lapsed.Error()}
}

// hashFile digests the file at p with alg and counts its bytes.
func hashFile(ctx context.Context, drv driver.Driver, p string, alg digest.Algorithm) (digest.Digest, int64, error) {
	rc, err := drv.Reader(ctx, p, 0)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	dg := alg.Digester()
	n, err := io.Copy(dg.Hash(), rc)
	if err != nil {
		return "", n, err
	}
	return dg.Digest(), n, nil
}

// addLinkAsync links the verified blob d into the repository while the
// caller publishes its data. Each of the two syncs a file and a directory
// or two; side by side, a small push waits for the slower of them rather
// than for both, which the profile of 64 KiB pushes showed as most of
// their time. Linking first is safe: the content was verified, and until
// the data is published a read finds the link but not the blob and
// answers "unknown", as it would after a crash between the two.
func (r *repository) addLinkAsync(ctx context.Context, d digest.Digest) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.addLink(ctx, layerLink, d, d) }()
	return done
}

// rehash reads the committed upload data back and digests it with alg.
func (u *upload) rehash(ctx context.Context, alg digest.Algorithm, size int64) (digest.Digest, error) {
	dg := alg.Digester()
	rc, err := u.repo.driver().Reader(ctx, uploadDataPath(u.repo.name, u.id), 0)
	if isNotFound(err) && size == 0 {
		return dg.Digest(), nil
	}
	if err != nil {
		return "", wrapDriverErr("verify upload", err)
	}
	defer rc.Close()
	n, err := io.Copy(dg.Hash(), rc)
	if err != nil {
		return "", wrapDriverErr("verify upload", err)
	}
	if n != size {
		return "", fmt.Errorf("storage: upload %s holds %d bytes, expected %d", u.id, n, size)
	}
	return dg.Digest(), nil
}

// mismatch ends an upload whose content is not want: nothing is stored.
func (u *upload) mismatch(ctx context.Context, want, got digest.Digest) error {
	if err := u.discard(ctx); err != nil {
		u.repo.reg.log.Warn("upload leftovers not removed", "repo", u.repo.name, "upload", u.id, "err", err)
	}
	return &Error{Err: ErrDigestInvalid, Digest: want, Detail: "content has digest " + string(got)}
}

func (u *upload) discard(ctx context.Context) error {
	if u.lease != nil && u.holds() != nil {
		// Not this request's session any more.
		return nil
	}
	return deleteIfExists(ctx, u.repo.driver(), uploadDir(u.repo.name, u.id))
}

// publish moves the verified upload data to the blob's place in the global
// store. The driver is asked, not the cache: a stale cache entry must never
// make a new blob's only copy be thrown away. deduped tells that identical
// content was there already and the upload's copy was not used.
func (u *upload) publish(ctx context.Context, d digest.Digest, size int64) (deduped bool, err error) {
	drv := u.repo.driver()
	dst := blobDataPath(d)
	reg := u.repo.reg
	token := reg.cache.blobs.begin()
	fi, err := drv.Stat(ctx, dst)
	if err == nil && !fi.IsDir {
		// Content-addressed: what is there is what was uploaded.
		reg.cache.blobs.add(token, d, blobInfo{size: fi.Size, modTime: fi.ModTime}, 1)
		return true, nil
	}
	if err != nil && !isNotFound(err) {
		return false, wrapDriverErr("publish blob", err)
	}
	src := uploadDataPath(u.repo.name, u.id)
	if !u.committed {
		u.committed = true
		err = driver.CommitTo(ctx, drv, u.fw, src, dst)
	} else if _, err = drv.Stat(ctx, src); err == nil {
		err = drv.Move(ctx, src, dst)
	}
	if isNotFound(err) && size == 0 {
		// A driver may keep nothing for an empty write.
		err = driver.PutContent(ctx, drv, dst, nil)
	}
	if err != nil {
		return false, wrapDriverErr("publish blob", err)
	}
	return false, nil
}

// confirmDeduped checks, once the link is written, that the existing copy
// the upload was deduplicated against is not being garbage-collected
// (gcfence.go). A copy deleted meanwhile is replaced by the upload's own;
// one about to be deleted fails the commit, and the link goes.
func (u *upload) confirmDeduped(ctx context.Context, d digest.Digest, size int64) error {
	r := u.repo
	err := r.reg.confirmLinked(ctx, []digest.Digest{d}, ErrBlobUnknown)
	if errors.Is(err, ErrBlobUnknown) {
		var deduped bool
		if deduped, err = u.publish(ctx, d, size); err == nil && deduped {
			err = r.reg.confirmLinked(ctx, []digest.Digest{d}, ErrBlobUnknown)
		}
	}
	if collected(err, ErrBlobUnknown) {
		r.takeBackLink(ctx, layerLink, d)
	}
	return err
}
