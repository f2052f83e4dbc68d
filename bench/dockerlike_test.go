package main

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
)

// The PATCH body must reach the transport in docker's piece size, or the
// server sees fewer, larger chunks than docker sends.
func TestPiecesReadsAtMostTheirSize(t *testing.T) {
	b := make([]byte, 3*dockerChunk+5)
	p := &pieces{b: b, n: dockerChunk}
	buf := make([]byte, 256<<10)
	var sizes []int
	for {
		n, err := p.Read(buf)
		if n > 0 {
			sizes = append(sizes, n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []int{dockerChunk, dockerChunk, dockerChunk, 5}
	if len(sizes) != len(want) {
		t.Fatalf("read pieces of %v, want %v", sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("read pieces of %v, want %v", sizes, want)
		}
	}
}

func TestForEachVisitsEveryIndexAtMostConcAtATime(t *testing.T) {
	var mu sync.Mutex
	seen, running, most := map[int]bool{}, 0, 0
	block := make(chan struct{})
	go func() {
		// Let the workers pile up before any finishes.
		for range 20 {
			block <- struct{}{}
		}
	}()
	err := forEach(context.Background(), 20, 3, func(_ context.Context, i int) error {
		mu.Lock()
		seen[i] = true
		running++
		most = max(most, running)
		mu.Unlock()
		<-block
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 20 || most > 3 {
		t.Fatalf("visited %d of 20 indexes, at most %d at a time (want 3 or fewer)", len(seen), most)
	}
}

func TestForEachReturnsTheFirstError(t *testing.T) {
	errBoom := errors.New("boom")
	err := forEach(context.Background(), 50, 3, func(_ context.Context, i int) error {
		if i == 4 {
			return errBoom
		}
		return nil
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("forEach: %v, want %v", err, errBoom)
	}
}
