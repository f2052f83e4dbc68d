package partbuf

import (
	"bytes"
	"testing"
)

func TestPoolReusesBuffersAndKeepsTheirCapacity(t *testing.T) {
	p := New(1<<20, 1)
	a := p.Get()
	if len(a) != 0 || cap(a) != 1<<20 {
		t.Fatalf("Get: len %d cap %d, want 0 and %d", len(a), cap(a), 1<<20)
	}
	a = append(a, bytes.Repeat([]byte{7}, 1000)...)
	b := p.Get()
	b = append(b, 1)
	p.Put(a)
	p.Put(b) // beyond keep: released, still usable
	if len(p.free) != 2 || p.warm != 1 {
		t.Fatalf("free %d warm %d, want 2 and 1", len(p.free), p.warm)
	}
	for range 2 {
		c := p.Get()
		if cap(c) != 1<<20 || len(c) != 0 {
			t.Fatalf("reused buffer: len %d cap %d", len(c), cap(c))
		}
		// A released buffer must still be writable and readable.
		c = append(c, []byte("still mapped")...)
		if string(c) != "still mapped" {
			t.Fatalf("reused buffer holds %q", c)
		}
	}
	if len(p.free) != 0 {
		t.Fatalf("free list has %d after taking both", len(p.free))
	}
	p.Put(make([]byte, 10)) // foreign capacity: dropped
	if len(p.free) != 0 {
		t.Fatal("a buffer of another capacity entered the pool")
	}
}
