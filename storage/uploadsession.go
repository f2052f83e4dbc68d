package storage

import (
	"context"
	"encoding"
	"errors"
	"io"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// uploadLeaseTerm is how long a request holds its session between
// renewals, unless Options.UploadLease says otherwise. A request that
// dies (a killed instance) blocks the session for this long plus the
// lease skew; a live one renews every third of it.
const uploadLeaseTerm = time.Minute

// uploadSettle is how long a request waits for the live claim of another
// instance's request to be released before it answers busy: that request
// may have answered its client already, its release one round trip behind
// (lease.releaseLater), and the client's next request, on another
// instance behind a load balancer, may come before it lands. A request
// still writing holds its claim for longer, and is refused after this.
const uploadSettle = time.Second

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

// ResumeUpload continues the upload id, started on this instance or another.
func (r *repository) ResumeUpload(ctx context.Context, id string) (Upload, error) {
	if !validUploadID(id) {
		return nil, &Error{Err: ErrUploadUnknown, Detail: "malformed upload id"}
	}
	// Requests on this instance are kept apart here, before the store is
	// asked: exactly, on every backend (Swift's create is not atomic),
	// and without a round trip.
	unhold, ok := r.reg.holdSession(r.name, id)
	if !ok {
		if _, err := r.startedAt(ctx, id); err != nil {
			return nil, err
		}
		return nil, r.busy(ctx, id)
	}
	hint := r.reg.takeHint(r.name, id)
	var (
		startedAt time.Time
		l         *lease
		prev      *leaseRecord
		err       error
	)
	if k := r.reg.takeKept(hint); k != nil {
		// The request before this one here kept its claim for it: no
		// other request wrote since, nor could remove the session.
		startedAt, l, prev = k.startedAt, k.l, &hint.lease.rec
	} else if startedAt, l, prev, err = r.openSession(ctx, id, hint); err != nil {
		unhold()
		return nil, err
	}
	l.onEnd = unhold
	// The claim the hold is under, for a status read here (heldHere).
	r.reg.sessions.Store(r.name+"/"+id, l.gen)
	l.pending = &r.reg.releases
	l.onFail = r.releaseFailed(id)
	l.keepAlive(ctx, 0)
	mem := hint.trusted(l, r.driver())
	var fw driver.FileWriter
	switch {
	case mem != nil && mem.fw == nil:
		// A session started here that no request wrote to since.
		fw, err = driver.NewWriter(ctx, r.driver(), uploadDataPath(r.name, id))
	case mem != nil:
		fw, err = driver.Reopen(ctx, r.driver(), mem.fw, uploadDataPath(r.name, id))
	default:
		fw, err = r.driver().Writer(ctx, uploadDataPath(r.name, id), true)
		if err == nil && (prev == nil || !prev.Released) {
			fw, err = r.forkUpload(ctx, id, fw)
		}
	}
	if isNotFound(err) {
		fw, err = r.adoptUpload(ctx, id)
	}
	if err != nil {
		_ = r.releaseInOrder(ctx, id, l, -1)
		return nil, wrapDriverErr("resume upload", err)
	}
	u := &upload{repo: r, id: id, startedAt: startedAt, fw: fw, alg: digest.SHA256, saved: true, lease: l, sticky: mem != nil}
	u.prevRelease = r.reg.lastRelease(r.name, id)
	if err := u.loadHashState(ctx, prev, mem); err != nil {
		_ = fw.Close()
		_ = r.releaseInOrder(ctx, id, l, -1)
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
	dir, gen, rec, err := currentClaim(ctx, r.driver(), uploadLeaseDir(r.name, id))
	if err != nil {
		return 0, wrapDriverErr("stat upload", err)
	}
	return r.releasedSizeFrom(ctx, dir, gen, rec)
}

// releasedSizeFrom is releasedSize from the current claim gen of the
// claims in dir, read as rec.
func (r *repository) releasedSizeFrom(ctx context.Context, dir string, gen uint64, rec *leaseRecord) (int64, error) {
	var err error
	for ; gen > 0; gen-- {
		if size, ok := rec.endedSize(); ok {
			return size, nil
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
	if _, loaded := r.sessions.LoadOrStore(key, uint64(0)); loaded {
		return nil, false
	}
	return func() { r.sessions.Delete(key) }, true
}

// heldHere tells whether a request of this instance holds the upload id
// of repository name (holdSession) under claim gen.
func (r *Registry) heldHere(name, id string, gen uint64) bool {
	v, ok := r.sessions.Load(name + "/" + id)
	return ok && gen > 0 && v.(uint64) == gen
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
	dir, gen, cur, err := currentClaim(ctx, r.driver(), uploadLeaseDir(r.name, id))
	if err != nil {
		return 0, wrapDriverErr("stat upload", err)
	}
	if h := r.reg.peekHint(r.name, id); h != nil && h.lease.gen == gen && gen > 0 {
		// The current claim is one this instance released, its release
		// perhaps still on its way (lease.releaseLater): what it left is
		// known here.
		cur = &h.lease.rec
	} else if r.reg.heldHere(r.name, id, gen) {
		// The current claim is a request of this instance still
		// writing: no release to wait for.
	} else if cur != nil && cur.Ended && cur.live(time.Now(), r.reg.leaseSkew()) {
		// Kept by another instance after a request ended there
		// (uploadkeep.go), which recorded the size it left: its
		// release, or the request that takes the claim over, would
		// tell nothing more.
	} else if cur, err = settleClaim(ctx, r.driver(), dir, gen, cur, r.reg.leaseSkew(), uploadSettle, true); err != nil {
		if errors.Is(err, errClaimGone) {
			return 0, ErrUploadUnknown
		}
		return 0, wrapDriverErr("stat upload", err)
	}
	// A session whose last request never ended (its instance was killed)
	// holds more than any claim says once that claim lapsed: the bytes
	// that request wrote before it died. One whose last request failed
	// before it knew the size released it as unknown (-1). The client
	// resumes from what is stored, so the session is taken over below to
	// learn it.
	//
	// With sessions shared with CNCF Distribution, its requests append
	// without a claim: only the stored bytes tell.
	unknown := r.reg.opts.DistributionUploads ||
		gen > 0 && (cur.Released && cur.Size < 0 || !cur.Released && !cur.live(time.Now(), r.reg.leaseSkew()))
	if !unknown {
		if size, err := r.releasedSizeFrom(ctx, dir, gen, cur); !errors.Is(err, errNoRelease) {
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
func (u *upload) loadHashState(ctx context.Context, prev *leaseRecord, mem *sessionMemory) error {
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
	if mem.restore(u, size) || u.restoreDigest(digest.Algorithm(prev.Alg), prev.Digest) {
		return nil
	}
	// Released by a Berth that kept the digest state in a file of its
	// own, as CNCF Distribution does.
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		state, err := driver.GetContent(ctx, u.repo.driver(), uploadHashStatePath(u.repo.name, u.id, alg, size), 1024)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return wrapDriverErr("resume upload", err)
		}
		if !u.restoreDigest(alg, state) {
			break
		}
		return nil
	}
	u.repo.reg.log.Warn("upload digest state lost; commit will re-read the data",
		"repo", u.repo.name, "upload", u.id, "offset", size)
	u.h = nil
	return nil
}

// holds tells whether the request still holds the session's lease, and
// remembers when it lapsed.
func (u *upload) holds() error {
	if u.lost == nil {
		u.lost = u.lease.valid()
	}
	return u.lost
}

// restoreDigest sets u's running digest to state, the marshalled digest
// with alg of the u.fw.Size() bytes written so far; false when state is
// not one.
func (u *upload) restoreDigest(alg digest.Algorithm, state []byte) bool {
	if state == nil || !supportedAlgorithm(alg) {
		return false
	}
	h := alg.Hash()
	um, ok := h.(encoding.BinaryUnmarshaler)
	if !ok || um.UnmarshalBinary(state) != nil {
		return false
	}
	u.alg, u.h, u.hashed = alg, h, u.fw.Size()
	return true
}
