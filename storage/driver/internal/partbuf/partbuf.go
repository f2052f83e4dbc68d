// Package partbuf hands out the large fixed-size buffers object-store
// drivers fill before sending a part or block.
//
// The buffers live outside the Go heap. A part buffer is long-lived and
// large (5–100 MiB), and the garbage collector lets the heap grow to twice
// what is live before it collects: eight writers' buffers on the heap would
// let a few MiB of request garbage swell the process by the buffers' whole
// size again. Off the heap, the collector's goal follows only the small
// live heap, and memory stays at about one buffer per open writer.
package partbuf

import (
	"os"
	"sync"
)

// Pool hands out buffers of one size. Buffers are never unmapped, because
// net/http may still be reading a request body after the request returns;
// a buffer beyond the ones kept warm is instead given back to the kernel
// (its pages are released and fault back in as zeros when reused).
type Pool struct {
	size int
	keep int

	mu   sync.Mutex
	free [][]byte // len 0, cap size
	warm int      // how many of free still hold resident pages
}

// New returns a pool of size-byte buffers that keeps up to keep idle
// buffers resident.
func New(size, keep int) *Pool {
	return &Pool{size: size, keep: keep}
}

// Size is the capacity of every buffer.
func (p *Pool) Size() int { return p.size }

// Get returns an empty buffer of capacity Size.
func (p *Pool) Get() []byte {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		if p.warm > len(p.free) {
			p.warm = len(p.free)
		}
		p.mu.Unlock()
		return b[:0]
	}
	p.mu.Unlock()
	return alloc(p.size)[:0]
}

// Put returns a buffer obtained from Get. Buffers of another capacity are
// dropped (left to the collector if they came from the heap).
func (p *Pool) Put(b []byte) {
	if cap(b) != p.size {
		return
	}
	b = b[:0]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, b)
	if p.warm < p.keep {
		p.warm++
		return
	}
	release(b[:cap(b)])
}

// Trim gives the kernel back the pages of b, a buffer obtained from Get,
// past its length, keeping the mapping and b's bytes: a buffer held for
// the bytes at its start then holds about their size of memory. The pages
// fault back in as zeros when written again.
func (p *Pool) Trim(b []byte) {
	if cap(b) != p.size {
		return
	}
	page := os.Getpagesize()
	start := (len(b) + page - 1) / page * page
	if start < cap(b) {
		release(b[start:cap(b)])
	}
}
