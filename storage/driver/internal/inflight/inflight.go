// Package inflight keeps the full buffers of one write in flight to an
// object store, several at a time, for the drivers that send a write in
// parts (S3 parts, Azure blocks).
//
// One connection to an object store carries tens of MB/s; a writer that
// waits for each part before filling the next is held to that. So a full
// buffer is sent in the background while the writer fills the next one,
// up to a limit of parts at a time. The caller fixes each part's place in
// the write (a part number, a block index) before sending it, so the
// write's bytes are in order however the sends finish, and parts are
// recorded oldest first. Memory: every writer has one buffer of its own,
// counted in the driver's shared memory when it has room; more, up to the
// limit, only while that memory allows. So many concurrent writers share
// the memory rather than add their own buffers to it, and fall back to one
// part at a time rather than grow.
package inflight

import (
	"runtime"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/berth-registry/berth/storage/driver/internal/partbuf"
)

// Queue holds the parts of one write that are in flight. T is what a
// landed part leaves for the write to record (an ETag, a block ID). It is
// used by one goroutine, the writer's.
type Queue[T any] struct {
	bufs  *partbuf.Pool
	held  *units  // of the driver's memory, shared by its writers, one a buffer
	limit int     // buffers a writer may hold, its own included
	land  func(T) // records a landed part, oldest first

	flight []*part[T] // oldest first
	spare  [][]byte   // buffers back from landed parts
	extra  int        // buffers held beyond the writer's own, each a unit of memory
	own    bool       // Writing was called: the own buffer's unit was asked for
}

// units are the units of memory one writer holds. They are given back by
// Release, or, for a writer its driver dropped without it (a path that
// returns early), when the queue is collected: a unit lost for good would
// shrink every later write's share.
type units struct {
	memory *semaphore.Weighted
	mu     sync.Mutex
	n      int64
}

func (u *units) take() bool {
	if !u.memory.TryAcquire(1) {
		return false
	}
	u.mu.Lock()
	u.n++
	u.mu.Unlock()
	return true
}

func (u *units) giveBack() {
	u.mu.Lock()
	n := u.n
	u.n = 0
	u.mu.Unlock()
	if n > 0 {
		u.memory.Release(n)
	}
}

// part is one send in flight.
type part[T any] struct {
	buf  []byte
	done chan struct{} // closed when the send returned
	res  T
	err  error
}

// New returns an empty queue drawing buffers from bufs, at most limit per
// writer and beyond the first only while memory has a unit to spare; land
// records each part that landed, in the order the parts were sent.
func New[T any](bufs *partbuf.Pool, memory *semaphore.Weighted, limit int, land func(T)) *Queue[T] {
	q := &Queue[T]{bufs: bufs, held: &units{memory: memory}, limit: limit, land: land}
	runtime.AddCleanup(q, (*units).giveBack, q.held)
	return q
}

// Writing counts the writer's own buffer in memory, if a unit is free,
// the first time it is called; drivers call it when a write's first bytes
// arrive. So the writers of uploads that begin together take their own
// units before any of them fills a buffer and asks for more: eight hold
// eight buffers and share what is left, instead of eight buffers plus all
// of memory (row S4 of the benchmarks: 196 MiB against 392 for CNCF
// Distribution before, with 64 MiB of writememory). A writer that was
// opened and has not written (a request still waiting for its body, a
// commit) holds none. A writer always has its own buffer, counted or not.
func (q *Queue[T]) Writing() {
	if !q.own {
		q.own = true
		q.held.take()
	}
}

// Len is the number of parts in flight.
func (q *Queue[T]) Len() int { return len(q.flight) }

// Send sends the full buffer buf in the background with send and returns
// an empty buffer for the next part: a spare one, a new one while fewer
// than limit are held and memory allows, or else the oldest part's once
// it landed, with that part's failure if it failed. Writers call Reap
// first, so that a failure already known stops the write before its next
// part.
func (q *Queue[T]) Send(buf []byte, send func([]byte) (T, error)) ([]byte, error) {
	q.start(buf, send)
	return q.next()
}

// SendLast sends buf, the last part of the write, in the background as
// Send does, but takes no buffer for a next part: there is none. buf is
// the queue's from then on: it comes back as a spare when the part
// landed, and goes back to the pool with Release.
func (q *Queue[T]) SendLast(buf []byte, send func([]byte) (T, error)) {
	q.start(buf, send)
}

func (q *Queue[T]) start(buf []byte, send func([]byte) (T, error)) {
	p := &part[T]{buf: buf, done: make(chan struct{})}
	q.flight = append(q.flight, p)
	go func() {
		defer close(p.done)
		p.res, p.err = send(p.buf)
	}()
}

func (q *Queue[T]) next() ([]byte, error) {
	if n := len(q.spare); n > 0 {
		b := q.spare[n-1]
		q.spare = q.spare[:n-1]
		return b[:0], nil
	}
	held := 1 + q.extra // the writer's own buffer is in flight now
	if held < q.limit && q.held.take() {
		q.extra++
		return q.bufs.Get(), nil
	}
	err := q.collect()
	n := len(q.spare)
	b := q.spare[n-1]
	q.spare = q.spare[:n-1]
	return b[:0], err
}

// collect waits for the oldest part in flight, records it and keeps its
// buffer as a spare.
func (q *Queue[T]) collect() error {
	p := q.flight[0]
	<-p.done
	q.flight = q.flight[1:]
	q.spare = append(q.spare, p.buf[:0])
	if p.err != nil {
		return p.err
	}
	q.land(p.res)
	return nil
}

// Reap records the oldest parts that already landed, without waiting,
// and returns the first failure among them.
func (q *Queue[T]) Reap() error {
	for len(q.flight) > 0 {
		select {
		case <-q.flight[0].done:
			if err := q.collect(); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// Settle waits for every part in flight and returns the first failure: a
// failed part's bytes are not in the write, so the writer may claim none
// of the bytes after them.
func (q *Queue[T]) Settle() error {
	var first error
	for len(q.flight) > 0 {
		if err := q.collect(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Release gives back the spare buffers and all the memory the writer
// held, its own buffer's unit included. Every part must have settled; the
// writer's own buffer is its to give back.
func (q *Queue[T]) Release() {
	for _, b := range q.spare {
		q.bufs.Put(b)
	}
	q.spare = nil
	q.held.giveBack()
	q.extra = 0
	q.own = false // a Write after a failed commit counts it again
}

// Split says how many parts a round of a write is cut into when the
// writer has have bytes buffered and n more announced (see the plans of
// the S3 and Azure writers): as many as most (the write's concurrency)
// while each holds least bytes or more, and no more than leaves the
// buffered bytes, the round's first part, whole. It returns 0 when the
// round is not worth cutting (under two parts). The size of the parts,
// and whether they fit the writer's buffers, are the caller's: S3 rounds
// down and leaves the rest to the last part, Azure rounds up.
func Split(have, n int64, most int, least int64) int64 {
	total := have + n
	k := min(int64(most), total/least)
	if have > 0 {
		k = min(k, total/have)
	}
	if k < 2 {
		return 0
	}
	return k
}
