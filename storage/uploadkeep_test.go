package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// An upload request whose claim followed this instance's release keeps it
// for the session's next request here (uploadkeep.go).

// claimCalls counts the creates of upload claims and the reads of upload
// start times.
type claimCalls struct {
	driver.Driver
	creates, startReads atomic.Int64
}

func (c *claimCalls) Create(ctx context.Context, p string, b []byte) error {
	if isClaim(p) {
		c.creates.Add(1)
	}
	return driver.Create(ctx, c.Driver, p, b)
}

func (c *claimCalls) Reader(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	if strings.HasSuffix(p, "/startedat") {
		c.startReads.Add(1)
	}
	return c.Driver.Reader(ctx, p, off)
}

// claimAt reads claim gen of the upload id in repository app.
func claimAt(t *testing.T, d driver.Driver, id string, gen uint64) *leaseRecord {
	t.Helper()
	b, err := driver.GetContent(context.Background(), d, leaseClaimPath(uploadLeaseDir("app", id), gen), 4096)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var rec leaseRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("claim %d: %v", gen, err)
	}
	return &rec
}

// TestNextRequestHereTakesTheKeptClaim: after the first PATCH on A, A's
// next PATCHes and the PUT neither create a claim nor read the start time;
// the status A reports is what each acknowledged, and the commit leaves
// nothing behind. Before, each request created the next claim (three more
// creates) and read the start time beside it.
func TestNextRequestHereTakesTheKeptClaim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		drv := &claimCalls{Driver: open()}
		reg := New(drv, Options{}, nil)
		reg.keepFor = 10 * time.Second // never lapses during the test
		a := reg.Repository("app")
		var content []byte
		for i := range 4 {
			content = append(content, bytesOf(100, byte('a'+i))...)
		}
		id := startedUpload(t, a, content[:100])
		patch(t, a, id, content[100:200])
		creates, reads := drv.creates.Load(), drv.startReads.Load()
		for i := 2; i < 4; i++ {
			patch(t, a, id, content[100*i:100*(i+1)])
			if size, err := a.StatUpload(ctx, id); err != nil || size != int64(100*(i+1)) {
				t.Fatalf("StatUpload after PATCH %d: %d, %v, want %d", i, size, err, 100*(i+1))
			}
		}
		u, err := a.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if u.(*upload).h == nil {
			t.Fatal("the digest state was not carried over with the kept claim")
		}
		d := digest.FromBytes(content)
		if _, err := u.Commit(ctx, d); err != nil {
			t.Fatal(err)
		}
		if n := drv.creates.Load() - creates; n != 0 {
			t.Fatalf("the requests after the first PATCH created %d claims, want 0", n)
		}
		if n := drv.startReads.Load() - reads; n != 0 {
			t.Fatalf("the requests after the first PATCH read the start time %d times, want 0", n)
		}
		reg.Drain(ctx)
		noSessionLeft(t, open())
		if got := readAll(t, mustOpen(t, a, d)); !bytes.Equal(got, content) {
			t.Fatalf("blob holds %d bytes, not the content", len(got))
		}
	})
}

// TestKeptClaimIsReleasedForAnotherInstance: the client's next request
// goes to B while A keeps its claim. B waits for the release, which comes
// once A's keep is over, and goes on from it with the digest state it
// records (the data is not re-read). Without the release at the end of
// the keep, B answered busy.
func TestKeptClaimIsReleasedForAnotherInstance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		regA := New(open(), Options{}, nil)
		a, b := regA.Repository("app"), newRegistry(open, Options{}).Repository("app")
		content := append(bytesOf(100, 'a'), bytesOf(50, 'b')...)
		id := startedUpload(t, a, content[:100])
		patch(t, a, id, content[100:])
		if _, ok := regA.kept.Load("app/" + id); !ok {
			t.Fatal("A did not keep the claim of its PATCH")
		}
		if size, err := b.StatUpload(ctx, id); err != nil || size != 150 {
			t.Fatalf("StatUpload on B: %d, %v, want 150", size, err)
		}
		u, err := b.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatalf("ResumeUpload on B: %v", err)
		}
		if u.Size() != 150 || u.(*upload).h == nil {
			t.Fatalf("B resumed at %d bytes (digest state trusted: %v), want 150, trusted", u.Size(), u.(*upload).h != nil)
		}
		d := digest.FromBytes(content)
		if _, err := u.Commit(ctx, d); err != nil {
			t.Fatalf("Commit on B: %v", err)
		}
		regA.Drain(ctx)
		noSessionLeft(t, open())
	})
}

// TestDrainReleasesKeptClaims: a server shutting down releases the claims
// it keeps, with what they vouch for, rather than leaving them to block
// their sessions until they lapse.
func TestDrainReleasesKeptClaims(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		reg := New(open(), Options{}, nil)
		reg.keepFor = 10 * time.Second
		a := reg.Repository("app")
		id := startedUpload(t, a, bytesOf(100, 'a'))
		patch(t, a, id, bytesOf(50, 'b'))
		if rec := claimAt(t, open(), id, 2); rec == nil || rec.Released {
			t.Fatalf("claim 2 before the drain: %+v, want kept", rec)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		reg.Drain(ctx)
		if rec := claimAt(t, open(), id, 2); rec == nil || !rec.Released || rec.Size != 150 || rec.Digest == nil {
			t.Fatalf("claim 2 after the drain: %+v, want released at 150 bytes with its digest state", rec)
		}
	})
}

// TestRequestsSentRoundRobinDoNotKeep: a client whose requests go to each
// instance in turn never finds a claim kept for it elsewhere: a request
// whose claim did not follow its own instance's release releases at once.
func TestRequestsSentRoundRobinDoNotKeep(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		regA, regB := New(open(), Options{}, nil), New(open(), Options{}, nil)
		regA.keepFor, regB.keepFor = 10*time.Second, 10*time.Second
		a, b := regA.Repository("app"), regB.Repository("app")
		content := append(append(bytesOf(100, 'a'), bytesOf(50, 'b')...), bytesOf(10, 'c')...)
		id := startedUpload(t, a, content[:100])
		for i, step := range []struct {
			reg  *Registry
			repo Repository
			data []byte
		}{{regB, b, content[100:150]}, {regA, a, content[150:]}} {
			patch(t, step.repo, id, step.data)
			if _, kept := step.reg.kept.Load("app/" + id); kept {
				t.Fatalf("PATCH %d kept its claim, want it released", i+1)
			}
			// Nothing kept: this waits for the release alone.
			step.reg.Drain(ctx)
		}
		u, err := b.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(content)); err != nil {
			t.Fatal(err)
		}
		noSessionLeft(t, open())
	})
}

// TestKeptClaimOfAKilledInstanceLosesNothing: A is killed while it keeps
// its claim (its keep never ends, nothing is released). Once the claim
// lapsed, B takes the session over, finds every byte A acknowledged and
// commits their digest.
func TestKeptClaimOfAKilledInstanceLosesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term, skew = time.Second, 100 * time.Millisecond
		opts := Options{UploadLease: term, LeaseSkew: skew}
		regA := New(open(), opts, nil)
		a := regA.Repository("app")
		content := append(append(bytesOf(100, 'a'), bytesOf(50, 'b')...), bytesOf(10, 'c')...)
		id := startedUpload(t, a, content[:100])
		patch(t, a, id, content[100:150])
		patch(t, a, id, content[150:])
		v, ok := regA.kept.Load("app/" + id)
		if !ok {
			t.Fatal("A did not keep the claim of its PATCH")
		}
		v.(*keptClaim).timer.Stop() // killed: the keep never ends
		b := newRegistry(open, opts).Repository("app")
		time.Sleep(term + skew + 100*time.Millisecond)
		if size, err := b.StatUpload(ctx, id); err != nil || size != 160 {
			t.Fatalf("StatUpload on B once A's claim lapsed: %d, %v, want 160", size, err)
		}
		commitSession(t, b, id, content)
	})
}

// TestTakenClaimIsRenewed: a request that takes a kept claim renews it, so
// a request longer than the claim's term still holds the session at its
// end.
func TestTakenClaimIsRenewed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		const term = time.Second
		reg := New(open(), Options{UploadLease: term, LeaseSkew: 100 * time.Millisecond}, nil)
		a := reg.Repository("app")
		content := append(append(bytesOf(100, 'a'), bytesOf(50, 'b')...), bytesOf(10, 'c')...)
		id := startedUpload(t, a, content[:100])
		patch(t, a, id, content[100:150])
		if _, ok := reg.kept.Load("app/" + id); !ok {
			t.Fatal("A did not keep the claim of its PATCH")
		}
		u, err := a.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if u.(*upload).lease.gen != 2 {
			t.Fatalf("the PATCH after took claim %d, want the kept claim 2", u.(*upload).lease.gen)
		}
		time.Sleep(term + term/2)
		if _, err := u.Write(content[150:]); err != nil {
			t.Fatalf("Write past the kept claim's first term: %v", err)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(content)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestKeptClaimRacingItsRelease: the next request comes as the keep ends,
// here or on another instance, many times over; whichever wins, every
// byte is where it belongs, the commit verifies the digest, and no late
// release brings a claim back after it.
func TestKeptClaimRacingItsRelease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		regA, regB := New(open(), Options{}, nil), New(open(), Options{}, nil)
		a, b := regA.Repository("app"), regB.Repository("app")
		rng := rand.New(rand.NewPCG(1, 2))
		var content []byte
		id := startedUpload(t, a, bytesOf(10, 'a'))
		content = append(content, bytesOf(10, 'a')...)
		for i := range 200 {
			// About as long as the client takes to send its next request.
			regA.keepFor = time.Duration(rng.IntN(200)) * time.Microsecond
			repo := a
			if i%7 == 6 {
				repo = b
			}
			chunk := bytesOf(10, byte('b'+i%20))
			patch(t, repo, id, chunk)
			content = append(content, chunk...)
		}
		commitSession(t, a, id, content)
		regA.Drain(ctx)
		regB.Drain(ctx)
		noSessionLeft(t, open())
	})
}

// TestClaimReleasedAsItIsTakenIsNotHandedOver: a request takes the hint
// of a kept claim just as the keep ends and the claim is released. It must
// not get the claim (released, it would fail the request's first write, or
// worse, let two requests write), and the release it then claims after is
// already tracked, for its own release to go behind.
func TestClaimReleasedAsItIsTakenIsNotHandedOver(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		// The release is held until it is seen tracked: one that landed
		// first would no longer be.
		gate := make(chan struct{})
		reg := New(&heldReleaseWrites{Driver: open(), open: gate}, Options{}, nil)
		reg.keepFor = 10 * time.Second
		a := reg.Repository("app")
		id := startedUpload(t, a, bytesOf(100, 'a'))
		patch(t, a, id, bytesOf(50, 'b'))
		if checkpoint := reg.lastRelease("app", id); checkpoint != nil {
			<-checkpoint
		}
		h := reg.takeHint("app", id)
		if h == nil || h.kept == nil {
			t.Fatalf("hint after the PATCH: %+v, want one keeping the claim", h)
		}
		h.kept.expire()
		if reg.takeKept(h) != nil {
			t.Fatal("a claim released at the end of its keep was handed over")
		}
		if released := reg.lastRelease("app", id); released == nil || isClosed(released) {
			t.Fatal("the release of the kept claim was not tracked before it could be claimed after")
		}
		close(gate)
		reg.Drain(context.Background())
		if rec := claimAt(t, open(), id, 2); rec == nil || !rec.Released || rec.Size != 150 {
			t.Fatalf("claim 2: %+v, want released at 150 bytes", rec)
		}
	})
}

// heldReleaseWrites holds back the writes that release an upload claim
// until open is closed; the claim's other writes go through.
type heldReleaseWrites struct {
	driver.Driver
	open chan struct{}
}

func (h *heldReleaseWrites) Create(ctx context.Context, p string, b []byte) error {
	return driver.Create(ctx, h.Driver, p, b)
}

func (h *heldReleaseWrites) PutContent(ctx context.Context, p string, b []byte) error {
	if isClaim(p) && bytes.Contains(b, []byte(`"released":true`)) {
		<-h.open
	}
	return driver.PutContent(ctx, h.Driver, p, b)
}

// TestKeptClaimsAreForgottenOnceReleased: a claim released at the end of
// its keep is not remembered past it; a push that never comes back must
// not leave an entry behind per session.
func TestKeptClaimsAreForgottenOnceReleased(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		reg := New(open(), Options{}, nil)
		reg.keepFor = time.Millisecond
		a := reg.Repository("app")
		id := startedUpload(t, a, bytesOf(100, 'a'))
		patch(t, a, id, bytesOf(50, 'b'))
		deadline := time.Now().Add(10 * time.Second)
		for rec := claimAt(t, open(), id, 2); (rec == nil || !rec.Released) && time.Now().Before(deadline); rec = claimAt(t, open(), id, 2) {
			time.Sleep(time.Millisecond)
		}
		reg.Drain(context.Background())
		n := 0
		reg.kept.Range(func(any, any) bool { n++; return true })
		if n != 0 {
			t.Fatalf("%d kept claims remembered after their release, want 0", n)
		}
	})
}

// TestKeptClaimTellsOthersWhatItsRequestLeft: while A keeps its claim,
// and while A's next request writes under it, B answers a status, and
// refuses a PATCH as busy, with the size A's last request acknowledged:
// the size a release would have recorded. Before the kept claim recorded
// it, B answered with the size before that request (100).
func TestKeptClaimTellsOthersWhatItsRequestLeft(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		regA := New(open(), Options{}, nil)
		regA.keepFor = 10 * time.Second
		var reads atomic.Int64
		a, b := regA.Repository("app"), New(claimReads{open(), func() { reads.Add(1) }}, Options{}, nil).Repository("app")
		id := startedUpload(t, a, bytesOf(100, 'a'))
		patch(t, a, id, bytesOf(50, 'b'))
		check := func(when string) {
			t.Helper()
			// Wait for the size to be in the claim (lease.checkpoint).
			if written := regA.lastRelease("app", id); written != nil {
				<-written
			}
			reads.Store(0)
			if size, err := b.StatUpload(ctx, id); err != nil || size != 150 {
				t.Fatalf("StatUpload on B %s: %d, %v, want 150", when, size, err)
			}
			// The current claim, once: it tells the size, and waiting
			// for its release (settleClaim) would tell nothing more.
			if n := reads.Load(); n != 1 {
				t.Fatalf("StatUpload on B %s read claims %d times, want 1", when, n)
			}
			_, err := b.ResumeUpload(ctx, id)
			var busy *BusyError
			if !errors.As(err, &busy) || busy.Size != 150 {
				t.Fatalf("ResumeUpload on B %s: %v (%+v), want busy at 150", when, err, busy)
			}
		}
		check("while A keeps the claim")
		u, err := a.ResumeUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write(bytesOf(10, 'c')); err != nil {
			t.Fatal(err)
		}
		check("while A's next request writes")
		if err := u.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCheckpointBeforeACommitIsNotWritten: docker follows a layer's PATCH
// with its PUT at once, and the PUT commits. The checkpoint of the claim
// the PATCH kept is not written: the commit dropped it while it waited
// for its delay, and the session is gone, with nothing written after. The
// commit drops it when it starts, so one that outlasts the delay (a store
// over a network) drops it too. The first case makes the delay long, so
// that it does not depend on the time a commit takes. Seen failing: the
// first case with both of the commit's drops removed (after the delay),
// the second with only the drop at the session's removal left, and with
// no delay at all.
func TestCheckpointBeforeACommitIsNotWritten(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		slow  bool // the commit's look for the blob takes 300 ms
	}{
		{"commit at once", 10 * time.Second, false},
		{"commit longer than the delay", 50 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
				ctx := context.Background()
				drv := &releaseDeadlines{Driver: open()}
				var store driver.Driver = drv
				if tc.slow {
					store = slowBlobStats{drv}
				}
				reg := New(store, Options{}, nil)
				reg.keepFor = 10 * time.Second
				reg.checkpointAfter = tc.delay
				a := reg.Repository("app")
				content := append(bytesOf(100, 'a'), bytesOf(50, 'b')...)
				id := startedUpload(t, a, content[:100])
				patch(t, a, id, content[100:])
				commitSession(t, a, id, content)
				reg.Drain(ctx)
				drv.mu.Lock()
				n := len(drv.got)
				drv.mu.Unlock()
				if n != 0 {
					t.Errorf("%d claim rewrites between the PATCH and the commit that followed it, want none", n)
				}
				noSessionLeft(t, open())
			})
		})
	}
}

// TestCheckpointWrittenWhenNothingFollows: a PATCH that no request
// follows has its checkpoint written after the delay, for other instances
// to answer from.
func TestCheckpointWrittenWhenNothingFollows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := New(open(), Options{}, nil)
		reg.keepFor = 10 * time.Second
		reg.checkpointAfter = time.Millisecond
		a := reg.Repository("app")
		id := startedUpload(t, a, bytesOf(100, 'a'))
		patch(t, a, id, bytesOf(50, 'b'))
		if checkpoint := reg.lastRelease("app", id); checkpoint != nil {
			<-checkpoint
		}
		_, gen, rec, err := currentClaim(ctx, driver.Wrap(open()), uploadLeaseDir("app", id))
		if err != nil || !rec.Ended || rec.Size != 150 {
			t.Fatalf("claim %d after a PATCH nothing followed: %+v, %v, want the 150 bytes it left", gen, rec, err)
		}
		reg.Drain(ctx)
	})
}

// slowBlobStats makes the commit's look for the blob in the store (its
// first call to it) take a while, as a round trip to a far store does.
type slowBlobStats struct{ *releaseDeadlines }

func (s slowBlobStats) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	if strings.Contains(p, "/blobs/") && strings.HasSuffix(p, "/data") {
		time.Sleep(300 * time.Millisecond)
	}
	return s.releaseDeadlines.Stat(ctx, p)
}

// TestStatusElsewhereWhileTheCheckpointWaits: another instance asked for
// the status of a session whose kept claim's checkpoint is not written
// yet answers once it is, with the size it records, not after the keep's
// release (10 s here) or its own wait for one (a second). The deadline
// only bounds a wait that should not happen.
func TestStatusElsewhereWhileTheCheckpointWaits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		reg := New(open(), Options{}, nil)
		reg.keepFor = 10 * time.Second
		reg.checkpointAfter = 50 * time.Millisecond
		a := reg.Repository("app")
		id := startedUpload(t, a, bytesOf(100, 'a'))
		patch(t, a, id, bytesOf(50, 'b'))
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
		defer cancel()
		size, err := newRegistry(open, Options{}).Repository("app").StatUpload(ctx, id)
		if err != nil || size != 150 {
			t.Fatalf("StatUpload on another instance while the checkpoint waits: %d, %v, want 150 once it is written", size, err)
		}
		reg.Drain(context.Background())
	})
}
