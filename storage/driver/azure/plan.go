package azure

import "github.com/berth-registry/berth/storage/driver/internal/inflight"

// A request that says how long its body is (a PATCH with a Content-Length)
// lets the writer plan the blocks of this round (the bytes up to the next
// Close or Commit): a 16 MiB chunk sent as two 8 MiB blocks goes at the
// pace of an 8 MiB block on one connection, which through a link shaped
// like a WAN is most of the request's time. Cut into four blocks of 4 MiB
// staged together, it takes about half of that. Azure takes blocks of any
// size, so unlike S3's parts no block needs to carry the rest of the round
// to stay above a minimum.
//
// The plan is T = the bytes buffered plus those announced, cut into
// k = min(writeconcurrency, T / minPlannedBlock) blocks: k-1 blocks of
// ceil(T/k) bytes staged as they fill, then blocks of chunksize again, so
// that the k-th block holds the rest of the round (ceil(T/k) bytes at
// most), staged at Close or Commit together with those still in flight. A
// plan whose blocks would not fit a buffer (T over about k chunksizes) is
// no plan: full chunksize blocks already go k at a time. A body longer
// than announced goes on in chunksize blocks after the planned ones; a
// shorter one leaves a shorter last block. Either way the bytes are
// exactly those written.
//
// Memory is what it was: the planned blocks are held in the writer's
// chunksize buffers, up to writeconcurrency of them while writememory
// allows (package inflight); without room they are staged one at a time.
//
// Azure allows 50 000 blocks in a blob: a write cut below chunksize for
// all of them would top out below what chunksize blocks allow. So a blob
// that has splitBlocksBefore blocks already is no longer cut: what it can
// hold stays within a fifth of what chunksize blocks allow (with the
// default 8 MiB, 10 000 blocks of 4 MiB and then 40 000 of 8 MiB, 351 GiB,
// where 50 000 of 8 MiB make 390 GiB).
const (
	splitBlocksBefore = 10_000

	// minPlannedBlock is the smallest block a plan cuts: each block is a
	// request, a round trip on the link.
	minPlannedBlock = 4 << 20
)

// Expect implements driver.Expecter: n bytes come before the next Close or
// Commit, and the writer plans this round's blocks from them.
func (w *writer) Expect(n int64) {
	w.planned, w.planSize = 0, 0
	if w.closed || w.done || w.err != nil || n <= 0 || w.buf == nil ||
		len(w.blocks)+w.flight.Len() >= splitBlocksBefore {
		return
	}
	have := int64(len(w.buf))
	k := inflight.Split(have, n, w.d.cfg.WriteConcurrency, minPlannedBlock)
	if k == 0 {
		return
	}
	size := (have + n + k - 1) / k
	if size > int64(cap(w.buf)) {
		return
	}
	w.planned, w.planSize = int(k-1), size
}

// blockEnd is how many bytes the buffer holds when it is staged as a
// block: the planned size while planned blocks remain, else all it can.
func (w *writer) blockEnd() int {
	if w.planned > 0 {
		return max(int(w.planSize), len(w.buf))
	}
	return cap(w.buf)
}
