package storage

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// An upload request's lease is released as its client is answered, not
// before (releaseLater), and a request on another instance that finds the
// claim still live waits a moment for that release (settleClaim).

// releaseLater is release, recording the running digest too (see giveUp),
// with the write sent in the background rather than waited for: the holder
// stops using the lease now, handOver runs (with a channel closed once the
// write is done, failed or not), then onEnd, then the write goes. An
// upload request answers its client as soon as its bytes are stored, and
// the next request, here or elsewhere, need not wait for a round trip that
// tells nothing about them: here it finds what handOver left (a hint that
// the claim is released), elsewhere it waits for the write a short while
// (settleClaim). A write that fails leaves the claim to lapse, as a crash
// would; the next request that finds it so forks the session (forkUpload)
// and loses nothing stored. The write is bounded as every backend call is
// (driver.Wrap), and by the claim's term.
//
// The write goes only once after is closed too (when not nil), and the
// channel handOver gets is closed once it is done: given the channel of
// the release before, it tells that every release of the session sent so
// far landed, and the releases land in the order of their claims.
func (l *lease) releaseLater(ctx context.Context, size int64, alg digest.Algorithm, state []byte, after <-chan struct{}, handOver func(written <-chan struct{})) error {
	rec, until, err := l.giveUp(size, alg, state)
	if err != nil {
		l.end()
		return err
	}
	written := make(chan struct{})
	handOver(written)
	l.end()
	// Not past the claim's term: once it lapsed, another instance may
	// take the session over and remove it, and a release landing then
	// would bring its claim back. Given up, it is a release that failed.
	// The release before goes first: once another instance reads this
	// one, no earlier claim of the session is still being written here,
	// so a commit or cancel there that removes the session is not
	// followed by a claim brought back.
	l.writeBehind(ctx, rec, until, after, written, l.onFail)
	return nil
}

// writeBehind writes rec into the claim in the background, once after is
// closed (when not nil), and closes written once it is done, failed or
// not; the write is given up at until, the claim's term by the holder's
// clock. A write that fails is told to failed, when not nil. Drain waits
// for it when the lease has pending set.
func (l *lease) writeBehind(ctx context.Context, rec leaseRecord, until time.Time, after <-chan struct{}, written chan struct{}, failed func(error)) {
	// What this write says supersedes a checkpoint not yet written.
	l.supersede()
	l.sendBehind(ctx, rec, until, after, written, failed, l.pending)
}

// sendBehind is writeBehind, for a write that supersedes nothing, counted
// in pending when not nil. A deferred checkpoint passes the pending it was
// made with: l.pending is set by the request holding the lease, without
// l.mu, and the checkpoint's timer runs beside the request that took it.
func (l *lease) sendBehind(ctx context.Context, rec leaseRecord, until time.Time, after <-chan struct{}, written chan struct{}, failed func(error), pending *sync.WaitGroup) {
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), until)
	send := func() {
		defer close(written)
		defer cancel()
		if after != nil {
			<-after
		}
		if err := l.write(ctx, rec); err != nil && failed != nil {
			failed(err)
		}
	}
	if pending != nil {
		pending.Go(send)
	} else {
		go send()
	}
}

// checkpoint records in the claim, in the background, that a request on
// the upload session ended at size while the holder keeps the lease
// (uploadkeep.go). The write goes once after is closed (when not nil), and
// the channel returned is closed once it is done, failed or not, so that
// the writes of the session's claims land in the order they were made; a
// renewal waits for it too. It is bounded by the claim's term, as a
// release is. A write that fails is told to failed.
//
// The write waits delay first (checkpointDelay), and does not go at all when
// something supersedes it meanwhile (supersede): a later write of the
// claim, which says as much, or the session's commit or cancel, which
// removes it. docker sends a layer's PUT within a millisecond or two of
// its PATCH's answer, and the PUT commits: the checkpoint between them
// was a file written and replaced for every layer pushed, read by no one.
// Another instance that reads the claim meanwhile finds a request still
// writing, and waits for the checkpoint (settleClaim) as it waits for a
// release: delay longer at most, as a checkpoint superseded by the next
// one passes its time on to it.
func (l *lease) checkpoint(ctx context.Context, size int64, delay time.Duration, after <-chan struct{}, failed func(error)) <-chan struct{} {
	// An earlier checkpoint not yet written: this one says more, and is
	// written when that one was due, at the latest, so that a claim of
	// quick requests in a row is never more than delay behind them.
	if due, ok := l.supersede(); ok {
		delay = min(delay, max(0, time.Until(due)))
	}
	written := make(chan struct{})
	d := &deferredWrite{written: written, after: after, pending: l.pending, due: time.Now().Add(delay)}
	l.mu.Lock()
	l.rec.Ended, l.rec.Size = true, size
	rec, until := l.rec, l.validUntil
	l.written = written
	l.mu.Unlock()
	if d.pending != nil {
		// Drain waits for it as for a write sent.
		d.pending.Add(1)
	}
	d.timer = time.AfterFunc(delay, func() {
		if !d.start() {
			return
		}
		l.mu.Lock()
		if l.deferred == d {
			l.deferred = nil
		}
		l.mu.Unlock()
		l.sendBehind(ctx, rec, until, after, written, failed, d.pending)
		if d.pending != nil {
			d.pending.Done()
		}
	})
	// Made known to supersede only now that its timer is set.
	l.mu.Lock()
	l.deferred = d
	l.mu.Unlock()
	return written
}

// checkpointDelay is how long a checkpoint waits to be superseded before
// it is written: far longer than a client takes to send its next request
// once answered, far shorter than settleClaim's wait.
const checkpointDelay = 20 * time.Millisecond

// deferredWrite is a checkpoint waiting for its delay.
type deferredWrite struct {
	written chan struct{}
	after   <-chan struct{}
	pending *sync.WaitGroup
	timer   *time.Timer
	due     time.Time // when the timer fires

	mu      sync.Mutex
	started bool // the write goes
	dropped bool // superseded: the write never goes
}

// start tells whether the write goes: it was not superseded first.
func (d *deferredWrite) start() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dropped {
		return false
	}
	d.started = true
	return true
}

// drop drops the write if it has not started, and tells whether it did.
// Its channel still closes only once the write before it is done: whoever
// waits for it (a commit about to remove the session) waits for every
// write sent before it.
func (d *deferredWrite) drop() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started || d.dropped {
		return false
	}
	d.dropped = true
	d.timer.Stop()
	if d.after == nil {
		d.done()
		return true
	}
	go func() {
		<-d.after
		d.done()
	}()
	return true
}

func (d *deferredWrite) done() {
	close(d.written)
	if d.pending != nil {
		d.pending.Done()
	}
}

// supersede drops the lease's checkpoint not yet written, if any: what
// is written or done next says more than it would. ok tells that it
// dropped one, due when it was to be written.
func (l *lease) supersede() (due time.Time, ok bool) {
	l.mu.Lock()
	d := l.deferred
	l.deferred = nil
	l.mu.Unlock()
	if d != nil && d.drop() {
		return d.due, true
	}
	return time.Time{}, false
}

// errClaimGone is settleClaim's error for a claim removed while it waited.
var errClaimGone = errors.New("storage: lease claim removed")

// settleClaim re-reads claim gen, whose content was cur, while it is live,
// for up to settle: an upload request answers its client once the bytes
// are stored and releases its claim in the background (upload.Close), so
// the client's next request, sent to another instance, may find that
// release still on its way, one round trip behind. Waiting a little for it
// tells that case from a request still writing, which would be refused
// busy. A settle of zero, or a claim that stays live, returns what it last
// read; a claim removed meanwhile (its session with it), errClaimGone.
// With ended, a claim that records the size its request left (a kept
// claim's checkpoint, written up to checkpointDelay after the answer)
// ends the wait too: it is all a status needs.
func settleClaim(ctx context.Context, drv driver.Driver, dir string, gen uint64, cur *leaseRecord, skew, settle time.Duration, ended bool) (*leaseRecord, error) {
	if settle <= 0 || gen == 0 {
		return cur, nil
	}
	deadline := time.Now().Add(settle)
	for pause := 5 * time.Millisecond; cur.live(time.Now(), skew) && !(ended && cur.Ended) && time.Now().Before(deadline); pause = min(2*pause, 200*time.Millisecond) {
		t := time.NewTimer(min(pause, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		b, err := driver.GetContent(ctx, drv, leaseClaimPath(dir, gen), 4096)
		if isNotFound(err) {
			// Claims go only with their directory: the holder committed
			// or cancelled the session while this one waited, and a
			// claim made now would be in a session that is gone.
			return nil, errClaimGone
		}
		if err != nil {
			return nil, err
		}
		cur = parseClaim(b)
	}
	return cur, nil
}
