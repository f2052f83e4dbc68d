package storage

import (
	"context"
	"sync"
	"time"
)

// A client's requests on one upload session come one after another, and
// behind a load balancer that keeps a client on one instance, to the same
// instance: the next PATCH of a chunked push, the PUT after a streamed
// PATCH. A request whose own claim followed this instance's last release
// on the session (so the client is kept here) does not release its claim
// when it answers, but keeps it for uploadKeep: the next request here
// takes it over in memory, with no create of the next claim and no read of
// the session's start time, which on an object store over a network are a
// round trip before the first byte of every request (a sixth of a 16 MiB
// PATCH's time). If none comes, the claim is released as it would have
// been (lease.releaseLater), uploadKeep late.
//
// What that costs elsewhere, and why it is safe:
//   - a request on another instance finds the claim live and waits for its
//     release (settleClaim, up to uploadSettle), at most uploadKeep longer
//     than it waits today: uploadKeep is well under uploadSettle;
//   - a client sent to every instance in turn never has its claim kept, as
//     none of its requests follows the release of the same instance;
//   - every acknowledged byte is stored before the claim is kept, so an
//     instance killed while it keeps one is a request that died: the claim
//     lapses after its term, and the next request elsewhere takes the
//     session over and finds every byte (forkUpload);
//   - the size the request left is written into the kept claim in the
//     background (lease.checkpoint), where a release would have recorded
//     it: while the claim lives, another instance answers busy, or a
//     status, with it, as it answers with the last release otherwise.
//     It is written checkpointDelay after the answer, unless the next
//     request here committed or cancelled the session, or ended too,
//     first: a status asked elsewhere meanwhile waits for it;
//   - a kept claim is not renewed, so one is kept only while more than
//     half its term is left: the request taking it over renews it in time;
//   - a server shutting down releases what it keeps (Drain).

// uploadKeep is how long an upload request's claim is kept for the next
// request on the session here: longer than a client takes to send its next
// request once answered, much shorter than uploadSettle.
const uploadKeep = 200 * time.Millisecond

// keptClaim is an upload request's claim kept after its client was
// answered, until the next request here takes it or its release is due.
type keptClaim struct {
	reg       *Registry
	key       string // repository/id, in reg.kept
	l         *lease
	startedAt time.Time

	mu    sync.Mutex
	state keptState
	timer *time.Timer
	// release writes the release the request would have written
	// (upload.releaseClaim); called once, under mu.
	release func()
}

type keptState int

const (
	claimKept keptState = iota
	claimTaken
	claimReleased
)

// keep keeps u's claim for the session's next request here instead of
// releasing it, when u's own claim followed this instance's release and
// enough of its term is left; false when it is to be released now.
func (u *upload) keep(ctx context.Context, size int64, hashState []byte) bool {
	reg, l := u.repo.reg, u.lease
	if !u.sticky || reg.keepFor <= 0 || l.valid() != nil {
		return false
	}
	if l.left() < l.term/2+reg.keepFor {
		return false
	}
	mem := u.remember(size, hashState)
	if mem == nil {
		return false
	}
	l.stopKeepAlive()
	k := &keptClaim{reg: reg, key: u.repo.name + "/" + u.id, l: l, startedAt: u.startedAt}
	k.release = func() {
		if err := u.releaseClaim(context.WithoutCancel(ctx), size, hashState); err != nil {
			reg.log.Warn("kept upload claim not released; it lapses after its term", "repo", u.repo.name, "upload", u.id, "err", err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !reg.putHint(u.repo.name, u.id, uploadHint{
		lease: leaseHint{gen: l.gen, rec: leaseRecord{Released: true, Size: size}, dir: l.dir},
		mem:   mem,
		kept:  k,
	}) {
		return false
	}
	// What this request left is recorded in the claim, in the background
	// and in order with the session's other claim writes, for another
	// instance to answer from while the claim is kept or taken over, or
	// once this instance died; the release at the end of the keep, and
	// a commit or cancel here, go after it, or drop it while it waits
	// for its delay (lease.checkpoint).
	written := l.checkpoint(ctx, size, reg.checkpointAfter, u.prevRelease, func(err error) {
		reg.log.Warn("upload claim not updated with the size its request left; another instance answers the size before it until the claim is released or lapses", "repo", u.repo.name, "upload", u.id, "err", err)
	})
	reg.trackRelease(u.repo.name, u.id, written)
	u.prevRelease = written
	reg.kept.Store(k.key, k)
	// Out of the in-process hold only once the hint tells the next
	// request here where the claim is.
	l.end()
	k.timer = time.AfterFunc(reg.keepFor, k.expire)
	return true
}

// expire releases the claim if no request took it.
func (k *keptClaim) expire() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state != claimKept {
		return
	}
	k.releaseNow()
}

// releaseNow releases the kept claim; under mu, while it is kept.
func (k *keptClaim) releaseNow() {
	k.state = claimReleased
	// The release hands the session's hint and its in-flight write over
	// (trackRelease) before mu is let go: a request that finds the claim
	// gone creates the next one after that release, in order. The claim
	// is forgotten only once its write is counted (lease.pending): a
	// Drain that no longer finds it must find its write to wait for.
	k.release()
	k.reg.kept.CompareAndDelete(k.key, k)
}

// take hands the kept claim over to the request calling it; false when it
// was released meanwhile, or when less than half its term is left: the
// process stalled past its keep (its timer fired late), and the claim
// may have lapsed, the session taken over or removed elsewhere. It is
// released then, and the request claims after it as after any release,
// which tells it what became of the session.
func (k *keptClaim) take() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state != claimKept {
		return false
	}
	// A timer that fired and waits for mu finds the claim taken.
	k.timer.Stop()
	if k.l.left() < k.l.term/2 {
		k.releaseNow()
		return false
	}
	k.state = claimTaken
	k.reg.kept.CompareAndDelete(k.key, k)
	return true
}

// takeKept returns the claim h kept, handed over to the caller, or nil.
func (r *Registry) takeKept(h *uploadHint) *keptClaim {
	if h == nil || h.kept == nil || !h.kept.take() {
		return nil
	}
	return h.kept
}

// releaseKept releases every claim kept here now, for Drain.
func (r *Registry) releaseKept() {
	r.kept.Range(func(_, v any) bool {
		v.(*keptClaim).expire()
		return true
	})
}
