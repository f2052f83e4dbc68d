package inflight

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/berth-registry/berth/storage/driver/internal/partbuf"
)

// sender sends parts that finish in the reverse of their order (each
// waits less than the one before) and counts how many run at once.
type sender struct {
	now, most atomic.Int32
	fail      int // the part that fails, 0 for none
}

func (s *sender) send(i int) func([]byte) (int, error) {
	return func(b []byte) (int, error) {
		n := s.now.Add(1)
		defer s.now.Add(-1)
		for {
			m := s.most.Load()
			if n <= m || s.most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Duration(10-i%10) * 3 * time.Millisecond)
		if i == s.fail {
			return 0, errSend
		}
		if len(b) != 1 || int(b[0]) != i {
			return 0, errors.New("part sent with another part's bytes")
		}
		return i, nil
	}
}

var errSend = errors.New("send failed")

func TestQueueRecordsPartsInSendOrderWithinItsLimits(t *testing.T) {
	for _, tc := range []struct {
		name          string
		limit, memory int
		most          int32 // buffers the writer may hold: parts in flight at most
	}{
		{"limit", 3, 100, 3},
		{"memory", 8, 2, 2}, // the writer's own buffer takes one of the two
		{"one", 1, 100, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := partbuf.New(64, 0)
			mem := semaphore.NewWeighted(int64(tc.memory))
			var landed []int
			q := New(pool, mem, tc.limit, func(i int) { landed = append(landed, i) })
			q.Writing()
			s := &sender{}
			buf := pool.Get()
			for i := 1; i <= 20; i++ {
				if err := q.Reap(); err != nil {
					t.Fatal(err)
				}
				buf = append(buf[:0], byte(i))
				next, err := q.Send(buf, s.send(i))
				if err != nil {
					t.Fatal(err)
				}
				if len(next) != 0 || cap(next) != 64 {
					t.Fatalf("next buffer len %d cap %d", len(next), cap(next))
				}
				buf = next
			}
			if err := q.Settle(); err != nil {
				t.Fatal(err)
			}
			for i, got := range landed {
				if got != i+1 {
					t.Fatalf("landed %v, want 1…20 in order", landed)
				}
			}
			if len(landed) != 20 {
				t.Fatalf("%d parts landed, want 20", len(landed))
			}
			// Twenty parts of several milliseconds each overlap whenever
			// the queue lets them.
			if m := s.most.Load(); m > tc.most || tc.most > 1 && m < 2 {
				t.Errorf("%d parts in flight at most, want between 2 and %d", m, tc.most)
			}
			q.Release()
			if !mem.TryAcquire(int64(tc.memory)) {
				t.Error("Release did not give back the memory of the writer's buffers")
			}
		})
	}
}

func TestQueueFailedPartIsReportedAndNotRecorded(t *testing.T) {
	pool := partbuf.New(64, 0)
	var mu sync.Mutex
	var landed []int
	q := New(pool, semaphore.NewWeighted(100), 4, func(i int) { mu.Lock(); landed = append(landed, i); mu.Unlock() })
	s := &sender{fail: 2}
	buf := pool.Get()
	var sendErr error
	for i := 1; i <= 3 && sendErr == nil; i++ {
		buf = append(buf[:0], byte(i))
		buf, sendErr = q.Send(buf, s.send(i))
	}
	err := q.Settle()
	if sendErr != nil {
		err = sendErr
	}
	if !errors.Is(err, errSend) {
		t.Fatalf("Settle = %v, want the failed part's error", err)
	}
	for _, i := range landed {
		if i == 2 {
			t.Fatalf("landed %v: the failed part was recorded", landed)
		}
	}
}

// TestWritersThatBeginTogetherShareMemory: eight writers that begin
// together hold their own buffers within the driver's memory, and only
// what is left goes to parts beyond them, so eight uploads do not hold
// eight buffers plus all of memory. A writer that has not written yet
// (a request waiting for its body) holds none.
func TestWritersThatBeginTogetherShareMemory(t *testing.T) {
	pool := partbuf.New(64, 0)
	mem := semaphore.NewWeighted(9)
	var qs []*Queue[int]
	idle := New(pool, mem, 8, func(int) {})
	if !mem.TryAcquire(9) {
		t.Fatal("a writer that has not written holds memory")
	}
	mem.Release(9)
	for range 8 {
		q := New(pool, mem, 8, func(int) {})
		q.Writing()
		qs = append(qs, q)
	}
	idle.Release()
	s := &sender{}
	buf := pool.Get()
	for i := 1; i <= 10; i++ {
		buf = append(buf[:0], byte(i))
		var err error
		if buf, err = qs[0].Send(buf, s.send(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := qs[0].Settle(); err != nil {
		t.Fatal(err)
	}
	// Ten parts of several milliseconds each overlap whenever the queue
	// lets them: its own buffer and the one unit the others left.
	if m := s.most.Load(); m != 2 {
		t.Errorf("%d parts in flight at most, want 2 (own buffer and the one unit left)", m)
	}
	if mem.TryAcquire(1) {
		t.Fatal("a unit of memory is free while eight writers and one extra buffer hold all nine")
	}
	for _, q := range qs {
		q.Release()
	}
	if !mem.TryAcquire(9) {
		t.Error("Release did not give back every writer's memory")
	}
}

// TestDroppedWriterGivesItsMemoryBack: a writer its driver drops without
// Release (a path that returns early) gives its units back once the queue
// is collected, so the driver's memory does not shrink for good.
func TestDroppedWriterGivesItsMemoryBack(t *testing.T) {
	mem := semaphore.NewWeighted(1)
	func() {
		q := New(partbuf.New(64, 0), mem, 4, func(int) {})
		q.Writing()
	}()
	if mem.TryAcquire(1) {
		t.Fatal("the writer's own buffer took no unit of memory")
	}
	for range 200 {
		runtime.GC()
		if mem.TryAcquire(1) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the dropped writer's unit of memory never came back")
}

// TestSendLastTakesNoBufferForANextPart: the last part of a write goes
// in the background without waiting for a buffer the writer will not
// fill (Send, at its limit, would wait here for that very part), lands
// like the others, and its buffer goes back to the pool with Release.
func TestSendLastTakesNoBufferForANextPart(t *testing.T) {
	pool := partbuf.New(64, 1)
	mem := semaphore.NewWeighted(1)
	var landed []int
	q := New(pool, mem, 1, func(i int) { landed = append(landed, i) })
	q.Writing()
	buf := append(pool.Get(), 7)
	sending := make(chan struct{})
	q.SendLast(buf, func(b []byte) (int, error) {
		<-sending
		return int(b[0]), nil
	})
	close(sending) // SendLast returned with its part still in flight
	if err := q.Settle(); err != nil {
		t.Fatal(err)
	}
	if len(landed) != 1 || landed[0] != 7 {
		t.Fatalf("landed %v, want [7]", landed)
	}
	q.Release()
	if !mem.TryAcquire(1) {
		t.Error("Release did not give back the memory of the writer's buffer")
	}
	if again := pool.Get(); &again[:1][0] != &buf[0] {
		t.Error("the last part's buffer did not go back to the pool")
	}
}

// TestSplit: a round is cut into as many parts as the concurrency allows
// while each holds the least a part may, never below what is buffered,
// and not at all when that leaves under two parts.
func TestSplit(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		have, n      int64
		most         int
		least, parts int64
	}{
		{0, 16 * mib, 8, 5 * mib, 3},       // S3: three parts of 5.33 MiB
		{0, 16 * mib, 4, 4 * mib, 4},       // Azure: four blocks of 4 MiB
		{0, 16 * mib, 2, 4 * mib, 2},       // held to the concurrency
		{4 * mib, 12 * mib, 8, 1 * mib, 4}, // the buffer is one part whole
		{10 * mib, 6 * mib, 8, 5 * mib, 0}, // a buffer of over half the round
		{0, 9 * mib, 8, 5 * mib, 0},        // under two parts of the least
		{0, 0, 8, 5 * mib, 0},
	} {
		if got := Split(c.have, c.n, c.most, c.least); got != c.parts {
			t.Errorf("Split(%d, %d, %d, %d) = %d, want %d", c.have, c.n, c.most, c.least, got, c.parts)
		}
	}
}
