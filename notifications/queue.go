package notifications

import (
	"fmt"
	"time"
)

// An endpoint's events reach its spool in batches (group commit): Publish
// adds them to the batch in memory, and the endpoint's writer goroutine
// writes the whole batch with one file per class and one sync of each
// file and of the directory, however many events it holds. While one
// batch is written the next one fills.
//
// A push, mount or delete is durable before Publish returns: its caller
// waits for the batch that holds it, and the writer starts on such a
// batch at once. Pulls do not wait: the writer lets them gather for
// pullDelay before writing them (or writes them sooner, with a push).

// batch is the events waiting for one write.
type batch struct {
	recs      []spooled
	pullBytes int64
	done      chan struct{} // closed once written (or not: see err)
	err       error
}

// spooled is one event of a batch.
type spooled struct {
	seq    uint64
	action string
	data   []byte
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// wait blocks until b is written.
func (b *batch) wait() error {
	<-b.done
	return b.err
}

// enqueue adds the records the endpoint wants to the batch being filled.
// It returns that batch when the caller must wait for it (it holds a
// push, mount or delete), else nil.
func (e *endpoint) enqueue(recs []record) (*batch, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, fmt.Errorf("endpoint %s: %w", e.cfg.Name, ErrClosed)
	}
	b := e.buf
	durable, pulls := false, false
	for _, r := range recs {
		if e.ignored(r.ev) {
			continue
		}
		isPull := r.ev.Action == ActionPull
		if isPull && b.pullBytes+int64(len(r.data)) > maxBufferedPulls {
			e.countDropped(ActionPull, 1)
			e.droppedUnlogged++
			continue
		}
		b.recs = append(b.recs, spooled{seq: e.next, action: r.ev.Action, data: r.data})
		e.next++
		if isPull {
			b.pullBytes += int64(len(r.data))
			pulls = true
		} else {
			durable = true
		}
	}
	e.mu.Unlock()
	switch {
	case durable:
		signal(e.urgent)
		return b, nil
	case pulls:
		signal(e.lazy)
	}
	return nil, nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// writeLoop is the endpoint's only writer: it writes the batch at once
// when someone waits for it, else after pullDelay, and what is left at
// close.
func (e *endpoint) writeLoop() {
	defer close(e.flushed)
	for {
		select {
		case <-e.urgent:
		case <-e.lazy:
			t := time.NewTimer(e.cfg.pullDelay)
			select {
			case <-t.C:
			case <-e.urgent:
			case <-e.closing:
			}
			t.Stop()
		case <-e.closing:
			e.flush()
			return
		}
		e.flush()
	}
}

// flush writes the batch being filled and starts a new one: take the
// batch, lay out its files, write them, record what was written.
func (e *endpoint) flush() {
	b := e.take()
	if b == nil {
		return
	}
	files, entries := layout(b.recs)
	syncs, err := e.spool.write(files)
	drop, gone := e.record(len(b.recs), entries, syncs, err)
	if err != nil {
		b.err = fmt.Errorf("endpoint %s: %w", e.cfg.Name, err)
	}
	close(b.done)
	e.forget(drop, gone)
	signal(e.wake)
}

// take swaps the batch being filled for a new one; nil when it is empty.
func (e *endpoint) take() *batch {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.buf
	if len(b.recs) == 0 {
		return nil
	}
	e.buf = newBatch()
	e.writing = len(b.recs)
	return b
}

// layout puts a batch's events in one file per class (pulls; pushes,
// mounts and deletes) and says where each one lies.
func layout(recs []spooled) ([]batchFile, []entry) {
	var segs [2]*segment
	var data [2][]byte
	entries := make([]entry, 0, len(recs))
	for _, r := range recs {
		c := 1
		if r.action == ActionPull {
			c = 0
		}
		if segs[c] == nil {
			segs[c] = &segment{name: batchName(r.seq, c == 0)}
		}
		start := len(data[c])
		data[c] = appendLine(data[c], r.seq, r.action, r.data)
		entries = append(entries, entry{
			seq: r.seq, action: r.action, seg: segs[c],
			off: int64(len(data[c]) - 1 - len(r.data)), size: len(r.data), disk: int64(len(data[c]) - start),
		})
		segs[c].live++
	}
	var files []batchFile
	for c, seg := range segs {
		if seg != nil {
			files = append(files, batchFile{name: seg.name, data: data[c]})
		}
	}
	return files, entries
}

// record queues the entries of a written batch and trims the spool to its
// cap, or counts the batch's n events as lost when the write failed. It
// returns what trim dropped.
func (e *endpoint) record(n int, entries []entry, syncs int, err error) (drop []entry, gone []string) {
	e.mu.Lock()
	e.writing = 0
	e.m.SpoolSyncs += uint64(syncs)
	if err == nil {
		e.m.SpoolWrites++
		for _, en := range entries {
			e.push(en)
		}
		drop, gone = e.trim()
		e.mu.Unlock()
		return drop, gone
	}
	e.m.SpoolErrors += uint64(n)
	e.m.LastError, e.m.LastErrorAt = err.Error(), time.Now()
	e.failedUnlogged += uint64(n)
	var lost uint64
	if now := time.Now(); now.Sub(e.failureLoggedAt) >= time.Minute {
		lost, e.failedUnlogged, e.failureLoggedAt = e.failedUnlogged, 0, now
	}
	e.mu.Unlock()
	if lost > 0 {
		// Requests whose events wait for the write log their own failure;
		// this line reports pulls too, which nothing else would.
		e.log.Error("notification spool write failed, events lost", "events", lost, "error", err)
	}
	return nil, nil
}

// push appends a spooled event to its class's queue. Called with mu held,
// or before the endpoint runs.
func (e *endpoint) push(en entry) {
	if en.action == ActionPull {
		e.pulls = append(e.pulls, en)
	} else {
		e.changes = append(e.changes, en)
	}
	e.bytes += en.disk
}

// trim drops events until the spool is within its cap: the oldest pulls
// first, so that no flood of pulls ever evicts a push, mount or delete;
// then, when only those are left, the oldest of them. The newest event is
// always kept. It returns the events dropped and the files no event
// needs any more. Called with mu held.
func (e *endpoint) trim() (drop []entry, gone []string) {
	for e.bytes > e.cfg.SpoolMaxBytes && len(e.pulls)+len(e.changes) > 1 {
		var d entry
		if len(e.pulls) > 0 {
			d, e.pulls = e.pulls[0], e.pulls[1:]
		} else {
			d, e.changes = e.changes[0], e.changes[1:]
		}
		e.bytes -= d.disk
		drop = append(drop, d)
		e.countDropped(d.action, 1)
		e.droppedUnlogged++
		if d.seg.live--; d.seg.live == 0 {
			gone = append(gone, d.seg.name)
		}
	}
	return drop, gone
}

// countDropped records dropped events. Called with mu held.
func (e *endpoint) countDropped(action string, n uint64) {
	if action == "" {
		action = "unknown"
	}
	e.m.Dropped += n
	e.m.DroppedByAction[action] += n
}

// forget removes the files of dropped events and logs the drops, at most
// once a minute.
func (e *endpoint) forget(drop []entry, gone []string) {
	for _, name := range gone {
		if err := e.spool.remove(name); err != nil {
			e.log.Error("notification spool remove failed", "error", err)
		}
	}
	e.mu.Lock()
	var logDropped uint64
	if e.droppedUnlogged > 0 {
		if now := time.Now(); now.Sub(e.dropLoggedAt) >= time.Minute {
			logDropped, e.droppedUnlogged, e.dropLoggedAt = e.droppedUnlogged, 0, now
		}
	}
	pulls := e.m.DroppedByAction[ActionPull]
	total, bytes := e.m.Dropped, e.bytes
	e.mu.Unlock()
	if logDropped > 0 {
		e.log.Warn("notification spool full, events dropped",
			"dropped", logDropped, "dropped_total", total, "dropped_pulls_total", pulls,
			"spool_bytes", bytes, "spool_max_bytes", e.cfg.SpoolMaxBytes)
	}
}
