package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// A lease is an exclusive right held through storage alone, so that
// separate processes on separate hosts agree on who holds it: one writer
// per upload session, one garbage collection per registry.
//
// It needs nothing of a backend but an atomic create (driver.Creator),
// which every object store offers as a conditional write. A lease is a
// directory of numbered claims:
//
//	<dir>/000000000001   {"owner":…, "expires":…, "released":true, "size":…}
//	<dir>/000000000002   {"owner":…, "expires":…}   ← the current claim
//
// The current claim is the highest number. To take the lease, a holder
// reads the current claim and, when it is released or expired, creates the
// next number: of several contenders exactly one create succeeds. A claim
// is only ever rewritten by its own holder (to renew or release it), so no
// compare-and-swap is needed, and a stale holder rewriting an old claim
// changes nothing, as a higher number exists. Claims are never reused: a
// lapsed lease stays dead, and its holder learns so at its next check.
//
// The holder trusts its claim until validUntil by its own monotonic clock
// (taken before the create was sent), renews well before, and stops using
// the lease past it; a renewal counts only if it landed before then. Others honour the claim until its expiry plus
// leaseSkew by their wall clock, which covers clock differences between
// hosts and the time a create takes to land.
type lease struct {
	drv  driver.Driver
	dir  string
	gen  uint64
	rec  leaseRecord
	term time.Duration
	skew time.Duration
	// durable writes claims with PutContent rather than PutScratch: the
	// gc lease must survive a crash of the storage host, an upload
	// session's need not (its holders die with it).
	durable bool

	// onEnd, when set, is called once when the holder releases or
	// abandons the lease.
	onEnd func()
	// onFail, when set, is told of a release written in the background
	// (releaseLater) that failed.
	onFail func(error)
	// pending, when set, counts the release written in the background,
	// for a server shutting down to wait for it (Registry.Drain).
	pending *sync.WaitGroup

	mu         sync.Mutex
	validUntil time.Time // monotonic
	err        error     // why the lease was lost, once it is
	renewals   *renewals // while keepAlive renews
	// written is closed once the last write of the claim sent in the
	// background (checkpoint) is done, or dropped (and every write before
	// it done); a renewal waits for it, so that it never lands before an
	// older content of the claim.
	written <-chan struct{}
	// deferred is the checkpoint waiting to be written, nil when none
	// is (leaserelease.go).
	deferred *deferredWrite
}

// leaseRecord is the content of one claim.
type leaseRecord struct {
	Owner   string    `json:"owner"`
	Host    string    `json:"host,omitempty"`
	Expires time.Time `json:"expires"`
	// Released is set by the holder when it gives the lease up.
	Released bool `json:"released,omitempty"`
	// Size is what the holder leaves behind: for an upload session, the
	// bytes its data holds at release, which tells the next holder that
	// the digest state saved at that offset is the whole story.
	Size int64 `json:"size,omitempty"`
	// Alg and Digest are, for an upload session, the running digest of
	// its Size bytes (the encoding.BinaryMarshaler form of Go's hash),
	// recorded with the release that vouches for it: the next holder, on
	// any instance, hashes on from there without another read. Absent
	// when the holder did not know it.
	Alg    string `json:"alg,omitempty"`
	Digest []byte `json:"digest,omitempty"`
	// Ended is set, with Size, by a holder that keeps the lease after a
	// request of the upload session ended (uploadkeep.go): Size is what
	// that request left, while the claim still binds others. It tells
	// another instance what to answer while the holder's next request
	// writes, or once the holder died, until the claim lapses; it vouches
	// for no digest state.
	Ended bool `json:"ended,omitempty"`
}

// endedSize is the size the last request on an upload session that ended
// left, as the claim r records it; false when it does not.
func (r *leaseRecord) endedSize() (int64, bool) {
	if r != nil && (r.Released || r.Ended) {
		return r.Size, true
	}
	return 0, false
}

// ErrLeaseHeld is returned when another holder has the lease.
var ErrLeaseHeld = errors.New("storage: lease held by another holder")

// errLeaseLost is returned by a holder's checks once its lease lapsed.
var errLeaseLost = errors.New("storage: lease lost")

// maxLeaseProbe bounds the walk past a listing that lags behind creates
// (eventually consistent listings, as Swift's).
const maxLeaseProbe = 64

func leaseClaimPath(dir string, gen uint64) string {
	return fmt.Sprintf("%s/%012d", dir, gen)
}

// currentClaim returns the current claim of the lease at dir and its number,
// zero and nil when nothing was ever claimed, and the directory its claims
// are in: dir, or for an upload session started before claims moved up
// into its directory, its oldLeaseDir (paths.go). A claim whose content
// cannot be read (cut short by a crash) is returned as an expired one.
func currentClaim(ctx context.Context, drv driver.Driver, dir string) (string, uint64, *leaseRecord, error) {
	names, err := drv.List(ctx, dir)
	if err != nil && !isNotFound(err) {
		return dir, 0, nil, err
	}
	// A session with both (an older build claimed in a session a newer
	// one started, both serving: docs/scaling.md says not to) is read
	// as the older build reads it.
	if old := dir + "/" + oldLeaseDir; slices.Contains(names, old) {
		dir = old
		if names, err = drv.List(ctx, dir); err != nil && !isNotFound(err) {
			return dir, 0, nil, err
		}
	}
	var gen uint64
	for _, n := range names {
		g, err := strconv.ParseUint(n[strings.LastIndexByte(n, '/')+1:], 10, 64)
		if err == nil && g > gen {
			gen = g
		}
	}
	// A listing may lag behind a create: the claims after it are found by
	// asking for them, and since numbers are never skipped, the first one
	// missing ends the walk.
	for range maxLeaseProbe {
		if _, err := drv.Stat(ctx, leaseClaimPath(dir, gen+1)); isNotFound(err) {
			break
		} else if err != nil {
			return dir, 0, nil, err
		}
		gen++
	}
	if gen == 0 {
		return dir, 0, nil, nil
	}
	rec, err := readClaim(ctx, drv, dir, gen)
	return dir, gen, rec, err
}

func readClaim(ctx context.Context, drv driver.Driver, dir string, gen uint64) (*leaseRecord, error) {
	b, err := driver.GetContent(ctx, drv, leaseClaimPath(dir, gen), 4096)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	if err != nil {
		// Gone with its directory: nobody holds it.
		return &leaseRecord{}, nil
	}
	return parseClaim(b), nil
}

// parseClaim is the claim whose content is b; one cut short (by a crash)
// is held by nobody.
func parseClaim(b []byte) *leaseRecord {
	var rec leaseRecord
	if json.Unmarshal(b, &rec) != nil {
		return &leaseRecord{}
	}
	return &rec
}

// live tells whether a claim still binds others at now, honoured skew
// past its expiry.
func (r *leaseRecord) live(now time.Time, skew time.Duration) bool {
	return r != nil && !r.Released && now.Before(r.Expires.Add(skew))
}

// heldError describes the lease's current holder.
type heldError struct {
	rec leaseRecord
	// prev is the claim before the current one, when it was read: what
	// the last holder to finish left behind.
	prev *leaseRecord
}

func (e *heldError) Error() string {
	return fmt.Sprintf("%v (owner %s on %s, until %s)", ErrLeaseHeld, e.rec.Owner, e.rec.Host, e.rec.Expires.Format(time.RFC3339))
}

func (e *heldError) Unwrap() error { return ErrLeaseHeld }

// acquireLease takes the lease at dir for term, or fails with an error
// wrapping ErrLeaseHeld. It returns the claim it superseded (nil when
// there was none), whose Released and Size tell how the last holder left.
func acquireLease(ctx context.Context, drv driver.Driver, dir string, term, skew time.Duration, durable bool) (*lease, *leaseRecord, error) {
	return acquireLeaseAfter(ctx, drv, dir, term, skew, durable, nil, 0)
}

// leaseHint is a claim this process released itself: the next holder on
// this instance creates the claim after it without reading the lease
// first. A hint another instance has overtaken costs one failed create,
// then the lease is read as usual.
type leaseHint struct {
	gen uint64
	rec leaseRecord
	// dir is where the lease's claims are, when not where the caller
	// would look first (an upload session's old layout).
	dir string
}

// acquireLeaseAfter is acquireLease starting from hint when it is not nil,
// and waiting up to settle for a live current claim to be released (see
// settleClaim).
func acquireLeaseAfter(ctx context.Context, drv driver.Driver, dir string, term, skew time.Duration, durable bool, hint *leaseHint, settle time.Duration) (*lease, *leaseRecord, error) {
	if hint != nil {
		if hint.dir != "" {
			dir = hint.dir
		}
		l, err := claimNext(ctx, drv, dir, term, skew, durable, hint.gen)
		if err == nil {
			return l, &hint.rec, nil
		}
		if !errors.Is(err, driver.ErrExist) {
			return nil, nil, err
		}
	}
	dir, gen, cur, err := currentClaim(ctx, drv, dir)
	if err != nil {
		return nil, nil, err
	}
	if cur, err = settleClaim(ctx, drv, dir, gen, cur, skew, settle, false); err != nil {
		return nil, nil, err
	}
	if cur.live(time.Now(), skew) {
		he := &heldError{rec: *cur}
		if gen > 1 {
			he.prev, _ = readClaim(ctx, drv, dir, gen-1)
		}
		return nil, nil, he
	}
	l, err := claimNext(ctx, drv, dir, term, skew, durable, gen)
	if err != nil {
		if errors.Is(err, driver.ErrExist) {
			// Another contender created the same number first.
			rec, _ := readClaim(ctx, drv, dir, gen+1)
			he := &heldError{prev: cur}
			if rec != nil {
				he.rec = *rec
			}
			return nil, nil, he
		}
		return nil, nil, err
	}
	return l, cur, nil
}

// claimNext creates the claim after gen: the lease is its creator's, or
// ErrExist when the claim is there already.
func claimNext(ctx context.Context, drv driver.Driver, dir string, term, skew time.Duration, durable bool, gen uint64) (*lease, error) {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	host, _ := os.Hostname()
	start := time.Now()
	l := &lease{
		drv: drv, dir: dir, gen: gen + 1, term: term, skew: skew, durable: durable,
		rec:        leaseRecord{Owner: hex.EncodeToString(id), Host: host, Expires: start.Add(term).UTC()},
		validUntil: start.Add(term),
	}
	b, _ := json.Marshal(l.rec)
	if err := driver.Create(ctx, drv, leaseClaimPath(dir, l.gen), b); err != nil {
		return nil, err
	}
	return l, nil
}

// valid reports whether the holder may still act under the lease.
func (l *lease) valid() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if !time.Now().Before(l.validUntil) {
		l.err = fmt.Errorf("%w: it expired at %s", errLeaseLost, l.validUntil.Format(time.RFC3339))
		return l.err
	}
	return nil
}

// left is how long the holder may still act under the lease, by its own
// clock.
func (l *lease) left() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Until(l.validUntil)
}

// renew extends the lease by its term. A lapsed lease is never renewed:
// another holder may have taken it, and its claims count from then on.
func (l *lease) renew(ctx context.Context) error {
	if err := l.valid(); err != nil {
		return err
	}
	// The renewal carries what a checkpoint not yet written would say.
	l.supersede()
	l.mu.Lock()
	written := l.written
	l.mu.Unlock()
	if written != nil {
		select {
		case <-written:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	start := time.Now()
	l.mu.Lock()
	rec, until := l.rec, l.validUntil
	l.mu.Unlock()
	rec.Expires = start.Add(l.term).UTC()
	if err := l.write(ctx, rec); err != nil {
		return err
	}
	// A later claim means the lease lapsed by another's clock while
	// this one thought it held: what it does from now on must not count.
	if _, err := l.drv.Stat(ctx, leaseClaimPath(l.dir, l.gen+1)); err == nil {
		return l.lose(fmt.Errorf("%w: claim %d was superseded", errLeaseLost, l.gen))
	} else if !isNotFound(err) {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if !time.Now().Before(until) {
		// It landed after the lease lapsed (a hung write): another
		// holder may have read the lapsed claim and be creating the next
		// one right now, too late for the check above to see it.
		l.err = fmt.Errorf("%w: the renewal landed after it expired at %s", errLeaseLost, until.Format(time.RFC3339))
		return l.err
	}
	// Valid from when the renewal was sent, as others see the new expiry
	// only once it has landed.
	l.rec, l.validUntil = rec, start.Add(l.term)
	return nil
}

func (l *lease) write(ctx context.Context, rec leaseRecord) error {
	b, _ := json.Marshal(rec)
	p := leaseClaimPath(l.dir, l.gen)
	if l.durable {
		return driver.PutContent(ctx, l.drv, p, b)
	}
	return driver.PutScratch(ctx, l.drv, p, b)
}

func (l *lease) lose(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
	return l.err
}

// keepAlive renews the lease every third of its term until release. A
// renewal that fails leaves the lease to lapse at validUntil, which every
// use of it checks; it is tried again until then.
//
// The renewals run on a timer rather than on a goroutine of their own:
// most holders (an upload request) release long before the first renewal
// is due, and a goroutine parked on a ticker for each of them cost a
// creation, two wake-ups and a ticker per request for nothing.
func (l *lease) keepAlive(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = l.term / 3
	}
	// Renewals stop with the caller's context too: a request that ended
	// without releasing (a panic past its cleanup) leaves the lease to
	// lapse, rather than holding the session for as long as the process
	// runs. A request ending normally releases within moments, well
	// inside what is left of the term.
	ended := ctx.Done()
	ctx = context.WithoutCancel(ctx)
	k := &renewals{}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.timer = time.AfterFunc(every, func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.stopped || isClosed(ended) {
			return
		}
		start := time.Now()
		if err := l.renew(ctx); errors.Is(err, errLeaseLost) {
			return
		}
		// Every period from the last one's start, as a ticker would.
		k.timer.Reset(max(every-time.Since(start), 0))
	})
	l.renewals = k
}

// renewals is the state of a lease's keepAlive: mu is held while a
// renewal runs, so stopKeepAlive waits for one under way.
type renewals struct {
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// isClosed reports whether done (nil: never) is closed.
func isClosed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// stopKeepAlive ends the renewals, waiting for one under way.
func (l *lease) stopKeepAlive() {
	if k := l.renewals; k != nil {
		k.mu.Lock()
		k.stopped = true
		k.timer.Stop()
		k.mu.Unlock()
		l.renewals = nil
	}
}

// end runs onEnd, once.
func (l *lease) end() {
	if f := l.onEnd; f != nil {
		l.onEnd = nil
		f()
	}
}

// release gives the lease up, recording size for the next holder. A
// lapsed lease is not written to: its claim tells the next holder that
// whatever it guarded was left in an unknown state.
func (l *lease) release(ctx context.Context, size int64) error {
	defer l.end()
	rec, _, err := l.giveUp(size, "", nil)
	if err != nil {
		return err
	}
	return l.write(ctx, rec)
}

// giveUp ends the holder's use of the lease, for release or releaseLater:
// renewals stop (one under way is waited for) and the lease counts as
// lost here. It returns the claim that releases it, recording size and,
// when state is not nil, the running digest alg of an upload session's
// bytes at size (see leaseRecord.Digest), with the time (monotonic) the
// claim holds until; an error when the lease lapsed, which is then not to
// be written.
func (l *lease) giveUp(size int64, alg digest.Algorithm, state []byte) (leaseRecord, time.Time, error) {
	l.stopKeepAlive()
	if err := l.valid(); err != nil {
		return leaseRecord{}, time.Time{}, err
	}
	l.mu.Lock()
	rec, until := l.rec, l.validUntil
	l.mu.Unlock()
	rec.Released, rec.Ended, rec.Size = true, false, size
	if state != nil {
		rec.Alg, rec.Digest = string(alg), state
	}
	_ = l.lose(fmt.Errorf("%w: released", errLeaseLost))
	return rec, until, nil
}

// abandon stops renewing without writing anything: the holder is done and
// what the lease guarded is gone (a committed or cancelled upload's
// directory, claims included).
func (l *lease) abandon() {
	l.stopKeepAlive()
	l.end()
	_ = l.lose(fmt.Errorf("%w: abandoned", errLeaseLost))
}
