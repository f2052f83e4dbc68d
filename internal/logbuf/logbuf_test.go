package logbuf

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that counts the writes it receives.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// eventually waits for cond, failing the test after a few seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWriterBatchesUntilFlush(t *testing.T) {
	var out syncBuffer
	w := New(&out, time.Hour)
	for i := range 3 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if got := out.String(); got != "" {
		t.Fatalf("written before any flush: %q", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "line 0\nline 1\nline 2\n"; got != want {
		t.Fatalf("after Flush: %q, want %q", got, want)
	}
	if n := out.Writes(); n != 1 {
		t.Errorf("three lines took %d writes, want 1", n)
	}
}

func TestWriterFlushesAfterItsDelay(t *testing.T) {
	var out syncBuffer
	w := New(&out, 10*time.Millisecond)
	defer w.Close()
	fmt.Fprintln(w, "first")
	eventually(t, "first line written by the timer", func() bool { return out.String() == "first\n" })
	// The timer is armed again by the next line after a flush.
	fmt.Fprintln(w, "second")
	eventually(t, "second line written by the timer", func() bool { return out.String() == "first\nsecond\n" })
}

func TestWriterFlushesAFullBufferAtOnce(t *testing.T) {
	var out syncBuffer
	w := New(&out, time.Hour)
	line := strings.Repeat("x", 1023) + "\n"
	for range maxBuffered / len(line) {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(out.String()); got != maxBuffered {
		t.Fatalf("%d bytes written once %d were buffered, want all of them", got, maxBuffered)
	}
}

func TestWriterCloseFlushesAndWritesThrough(t *testing.T) {
	var out syncBuffer
	w := New(&out, time.Hour)
	fmt.Fprintln(w, "before")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "before\n" {
		t.Fatalf("after Close: %q", got)
	}
	fmt.Fprintln(w, "after")
	if got := out.String(); got != "before\nafter\n" {
		t.Fatalf("a write after Close was not passed through: %q", got)
	}
}

func TestUrgentRecordsAreWrittenBeforeHandleReturns(t *testing.T) {
	var out syncBuffer
	w := New(&out, time.Hour)
	log := slog.New(w.Urgent(slog.NewTextHandler(w, nil), slog.LevelWarn)).With("svc", "berth")
	log.Info("request one")
	log.Info("request two")
	if got := out.String(); got != "" {
		t.Fatalf("info records written at once: %q", got)
	}
	log.Warn("disk full")
	got := out.String()
	one, two, warn := strings.Index(got, "request one"), strings.Index(got, "request two"), strings.Index(got, "disk full")
	if one < 0 || two < one || warn < two || !strings.Contains(got, "svc=berth") {
		t.Fatalf("after a warning, want both requests then the warning, each with svc: %q", got)
	}
}

func TestWriterKeepsEachWriteWholeAndInOrder(t *testing.T) {
	var out syncBuffer
	w := New(&out, 20*time.Millisecond)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(w, "%d %d %s\n", g, i, strings.Repeat("y", i%200))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var g, i int
		var pad string
		if _, err := fmt.Sscanf(l, "%d %d %s", &g, &i, &pad); err != nil && !strings.HasSuffix(l, " ") {
			t.Fatalf("torn line %q: %v", l, err)
		}
		if g < 0 || g >= writers || i != next[g] || len(pad) != i%200 {
			t.Fatalf("writer %d: line %q, want number %d with %d bytes of padding", g, l, next[g], next[g]%200)
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines arrived, want %d", g, n, lines)
		}
	}
	if n := out.Writes(); n >= writers*lines/10 {
		t.Errorf("%d lines took %d writes: not batched", writers*lines, n)
	}
}

// TestWriterLosesNothingWrittenWhileItCloses: writers still logging while
// the server shuts down must find every line out, in order, whether it
// was buffered before Close or written through after.
func TestWriterLosesNothingWrittenWhileItCloses(t *testing.T) {
	for range 50 {
		var out syncBuffer
		w := New(&out, time.Hour)
		const writers, lines = 4, 200
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := range lines {
					fmt.Fprintf(w, "%d %d\n", g, i)
				}
			})
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		next := make([]int, writers)
		for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			var g, i int
			if _, err := fmt.Sscanf(l, "%d %d", &g, &i); err != nil || g < 0 || g >= writers || i != next[g] {
				t.Fatalf("line %q out of order or torn (writer %d expected line %d)", l, g, next[g])
			}
			next[g]++
		}
		for g, n := range next {
			if n != lines {
				t.Fatalf("writer %d: %d of %d lines arrived", g, n, lines)
			}
		}
	}
}
