package storage

import (
	"context"
	"errors"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// A chunked push sends its requests one after another, and behind a load
// balancer that keeps a client on one instance, mostly to the same
// instance. What a request of this instance knew of the session when it
// released it is remembered, so that the next request here, once its
// claim on the lease follows that release, goes on without reading the
// session back: on an object store, the listings of the upload and its
// parts, the state and the digest state cost a round trip each, per
// request. A claim that follows this instance's own release means no
// request on any instance wrote the session in between (each would have
// claimed first); a session deleted meanwhile (committed or cancelled on
// another instance, its lease with it) is told by its start time, read
// beside the claim.

// uploadHint is what putHint keeps for the next request on a session.
type uploadHint struct {
	lease leaseHint
	mem   *sessionMemory // nil when not kept (see maxParked)
	// kept is the claim itself when the request kept it rather than
	// releasing it (uploadkeep.go); lease then tells what its release
	// will say.
	kept *keptClaim
}

// trackRelease records written, closed once the release of the upload's
// claim just handed over is written (lease.releaseLater), as the last one
// in flight on the session here, until it is. It is kept apart from the
// hint, which a request may take and drop (one that fails) or which may
// not be kept at all (maxHints): a commit or cancel here must still wait
// for that release (upload.releaseLanded).
func (r *Registry) trackRelease(name, id string, written <-chan struct{}) {
	key := name + "/" + id
	r.releasing.Store(key, written)
	go func() {
		<-written
		r.releasing.CompareAndDelete(key, written)
	}()
}

// lastRelease returns the channel of the last release of the upload still
// in flight here (trackRelease), or nil.
func (r *Registry) lastRelease(name, id string) <-chan struct{} {
	if v, ok := r.releasing.Load(name + "/" + id); ok {
		return v.(<-chan struct{})
	}
	return nil
}

// sessionMemory is the session as the request that released it left it.
type sessionMemory struct {
	// fw is closed, for driver.Reopen; nil for a session whose write
	// has not started (see upload.start).
	fw   driver.FileWriter
	size int64
	// alg and hashState are the running digest at size, marshalled; nil
	// when it was unknown.
	alg       digest.Algorithm
	hashState []byte
}

// maxHints bounds the claims remembered for sessions whose next request
// never comes (abandoned pushes): past it, the next request reads the
// lease as another instance would. maxParked bounds the closed writers
// among them (a few KiB each: the parts of a multipart upload).
const (
	maxHints  = 10000
	maxParked = 1000
)

// putHint remembers that this instance released the claim of h on the
// upload id of repository name, so that the session's next request here
// takes the lease with one create instead of reading it first (three
// round trips on an object store, a fifth of a small push's time), and
// goes on from h.mem. It returns false when h, or the memory of a
// hint that keeps a claim, was not kept.
func (r *Registry) putHint(name, id string, h uploadHint) bool {
	if r.hintCount.Load() >= maxHints {
		return false
	}
	if h.mem != nil && r.parked.Add(1) > maxParked {
		r.parked.Add(-1)
		if h.kept != nil {
			return false
		}
		h.mem = nil
	}
	old, loaded := r.hints.Swap(name+"/"+id, h)
	if !loaded {
		r.hintCount.Add(1)
	} else if old.(uploadHint).mem != nil {
		r.parked.Add(-1)
	}
	return true
}

// takeHint returns and forgets what this instance last released on the
// upload, or nil.
func (r *Registry) takeHint(name, id string) *uploadHint {
	v, ok := r.hints.LoadAndDelete(name + "/" + id)
	if !ok {
		return nil
	}
	r.hintCount.Add(-1)
	h := v.(uploadHint)
	if h.mem != nil {
		r.parked.Add(-1)
	}
	return &h
}

// peekHint returns what this instance last released on the upload, or
// nil, and leaves it for the next request.
func (r *Registry) peekHint(name, id string) *uploadHint {
	v, ok := r.hints.Load(name + "/" + id)
	if !ok {
		return nil
	}
	h := v.(uploadHint)
	return &h
}

// trusted returns the session memory of h when l's claim is the one right
// after h's release, or the one h kept, on a backend whose creates are
// atomic (on Swift two instances may both have made the same claim); nil
// otherwise.
func (h *uploadHint) trusted(l *lease, drv driver.Driver) *sessionMemory {
	if h != nil && h.kept != nil && h.kept.l == l {
		// The claim the request before kept for this one.
		return h.mem
	}
	if h == nil || h.mem == nil || l.gen != h.lease.gen+1 || !driver.AtomicCreate(drv) {
		return nil
	}
	return h.mem
}

// remember returns what the next request needs of u, which has just been
// closed at size with the digest state hashState.
func (u *upload) remember(size int64, hashState []byte) *sessionMemory {
	if u.repo.reg.opts.DistributionUploads {
		// Distribution's instances write a session without a claim on
		// its lease, so a claim that follows this instance's release
		// does not tell that nothing wrote in between.
		return nil
	}
	return &sessionMemory{fw: u.fw, size: size, alg: u.alg, hashState: hashState}
}

// restore sets u's running digest from m when m has it at size.
func (m *sessionMemory) restore(u *upload, size int64) bool {
	if m == nil || m.size != size {
		return false
	}
	return u.restoreDigest(m.alg, m.hashState)
}

// startedAt reads when the upload id started; ErrUploadUnknown when it
// does not exist.
func (r *repository) startedAt(ctx context.Context, id string) (time.Time, error) {
	b, err := driver.GetContent(ctx, r.driver(), uploadStartedAtPath(r.name, id), 64)
	if err != nil {
		if isNotFound(err) {
			return time.Time{}, ErrUploadUnknown
		}
		return time.Time{}, wrapDriverErr("resume upload", err)
	}
	t, err := time.Parse(time.RFC3339, string(b))
	if err != nil {
		return time.Time{}, &Error{Err: ErrUploadInvalid, Detail: "corrupt upload start time"}
	}
	return t, nil
}

// openSession reads when the upload id started and takes its lease,
// after hint's claim when there is one: then both at once, as the claim
// needs nothing the start time says. prev is the claim the lease
// superseded.
func (r *repository) openSession(ctx context.Context, id string, hint *uploadHint) (startedAt time.Time, l *lease, prev *leaseRecord, err error) {
	dir := uploadLeaseDir(r.name, id)
	acquire := func(h *leaseHint) {
		l, prev, err = acquireLeaseAfter(ctx, r.driver(), dir, r.reg.uploadLease(), r.reg.leaseSkew(), false, h, uploadSettle)
		err = r.leaseErr(err)
	}
	if hint == nil {
		if startedAt, err = r.startedAt(ctx, id); err != nil {
			return time.Time{}, nil, nil, err
		}
		acquire(nil)
		return startedAt, l, prev, err
	}
	var serr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		startedAt, serr = r.startedAt(ctx, id)
	}()
	acquire(&hint.lease)
	<-done
	switch {
	case serr == nil:
		return startedAt, l, prev, err
	case err != nil:
	case errors.Is(serr, ErrUploadUnknown):
		// Deleted with its lease since this instance released it: the
		// claim just made is all there is of the session.
		l.abandon()
		_ = r.driver().Delete(ctx, leaseClaimPath(l.dir, l.gen))
	default:
		// Nothing was written: the session is as prev left it.
		size := int64(-1)
		if prev != nil && prev.Released {
			size = prev.Size
		}
		_ = r.releaseInOrder(ctx, id, l, size)
	}
	return time.Time{}, nil, nil, serr
}

// releaseInOrder releases l, a claim on the upload id that a failed
// request took, after the release before it still in flight here
// (lastRelease): a release that overtook it would tell another instance
// the session is free, which may then commit and remove it before the
// earlier release lands and brings its claim back. It is written in the
// background behind that one, tracked as the session's last (a commit or
// cancel here waits for it), so that the failed request answers at once
// rather than for as long as the earlier release takes.
func (r *repository) releaseInOrder(ctx context.Context, id string, l *lease, size int64) error {
	before := r.reg.lastRelease(r.name, id)
	if before == nil {
		return l.release(ctx, size)
	}
	l.pending = &r.reg.releases
	if l.onFail == nil {
		// Taken by a request that failed before ResumeUpload set it.
		l.onFail = r.releaseFailed(id)
	}
	return l.releaseLater(ctx, size, "", nil, before, func(written <-chan struct{}) {
		r.reg.trackRelease(r.name, id, written)
	})
}

// releaseFailed logs a release of a claim on the upload id that was
// written in the background and failed (lease.onFail).
func (r *repository) releaseFailed(id string) func(error) {
	return func(err error) {
		r.reg.log.Warn("upload lease not released; the next request elsewhere takes the session over once the claim lapses", "repo", r.name, "upload", id, "err", err)
	}
}

// leaseErr turns a failure to take an upload's lease into what the
// client is told: busy, with the size the session had when its last
// request ended, when another request holds it.
func (r *repository) leaseErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, errClaimGone) {
		// Committed or cancelled by the request it waited for.
		return ErrUploadUnknown
	}
	var he *heldError
	if errors.As(err, &he) {
		busy := &BusyError{}
		if size, ok := he.rec.endedSize(); ok {
			// A claim kept after a request ended (uploadkeep.go).
			busy.Size = size
		} else if size, ok := he.prev.endedSize(); ok {
			busy.Size = size
		}
		return busy
	}
	return wrapDriverErr("resume upload", err)
}
