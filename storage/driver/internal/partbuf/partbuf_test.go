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

func TestTrimKeepsTheBytesAndDropsThePagesAfter(t *testing.T) {
	p := New(1<<20, 1)
	b := p.Get()
	b = append(b, bytes.Repeat([]byte{9}, cap(b))...)
	b = b[:5000] // the tail held: a page and some
	p.Trim(b)
	if !bytes.Equal(b, bytes.Repeat([]byte{9}, 5000)) {
		t.Fatal("Trim changed the bytes before the buffer's length")
	}
	full := b[:cap(b)]
	// The rest of the page that holds the last byte stays; the pages
	// after it were given back and read as zeros (a mapped buffer).
	if full[5001] != 9 {
		t.Errorf("byte after the length, same page: %d, want 9", full[5001])
	}
	if full[cap(full)-1] != 0 || full[64<<10] != 0 {
		t.Errorf("bytes in later pages: %d, %d, want 0 (given back)", full[64<<10], full[cap(full)-1])
	}
	p.Trim(make([]byte, 10, 20)) // another capacity: left alone
}
