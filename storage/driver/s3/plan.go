package s3

import "github.com/berth-registry/berth/storage/driver/internal/inflight"

// A request that says how long its body is (a PATCH with a Content-Length)
// lets the writer plan the parts of the bytes it holds and those to come
// before Close: a 16 MiB chunk sent as a full 10 MiB part and a 6 MiB tail
// goes at the pace of the 10 MiB part on one connection, which through a
// link shaped like a WAN is most of the request's time. Cut into three
// parts of 5.33 MiB sent together, it takes about a third of that.
//
// The plan is T = the bytes buffered plus those announced, cut into
// k = min(writeconcurrency, T / 5 MiB) parts: k-1 parts of T/k bytes
// (rounded down), then parts of chunksize again, so that the k-th part
// holds the rest of the round (T/k bytes and under k more) and leaves
// nothing under S3's minimum behind it. Every non-final part stays at
// 5 MiB or more. A body longer than announced goes on in chunksize parts
// after the planned ones; a shorter one leaves its tail as it would
// without a plan (a part at Close when it reaches 5 MiB, else the state
// object). Either way the bytes are exactly those written.
//
// S3 allows 10 000 parts in an upload: a write cut below chunksize for all
// of them would top out at half the size 10 MiB parts allow. So an upload
// that has splitPartsBefore parts already is no longer cut: what it can
// hold stays within a tenth of what chunksize parts allow (with 10 MiB,
// at least 2000 parts of 5 MiB and then 8000 of 10 MiB, 88 GiB, where
// 10 000 of 10 MiB make 98 GiB).
const splitPartsBefore = 2000

// Expect implements driver.Expecter: n bytes come before the next Close or
// Commit, and the writer plans this round's parts from them.
func (w *writer) Expect(n int64) {
	w.planned, w.planSize = 0, 0
	if w.done || n <= 0 || w.buf == nil || len(w.parts)+w.flight.Len() >= splitPartsBefore {
		return
	}
	have := int64(len(*w.buf))
	k := inflight.Split(have, n, w.d.cfg.writeConcurrency, minChunkSize)
	if k == 0 {
		return
	}
	size := (have + n) / k
	// The k-th part, the rest of the round, must fit a buffer; a plan
	// that close to chunksize is no plan.
	if size+k > w.d.cfg.chunkSize || size+k > int64(cap(*w.buf)) {
		return
	}
	w.planned, w.planSize = int(k-1), size
}

// partEnd is how many bytes the buffer holds when it is sent as a part:
// the planned size while planned parts remain, else the whole buffer.
func (w *writer) partEnd() int {
	buf := *w.buf
	if w.planned > 0 {
		return max(int(w.planSize), len(buf))
	}
	return cap(buf)
}
