//go:build unix

package partbuf

import "syscall"

// alloc maps anonymous memory; pages become resident only when written.
func alloc(size int) []byte {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		// Out of address space or a restrictive sandbox: the heap still works.
		return make([]byte, size)
	}
	return b
}

// release gives the pages back to the kernel while keeping the mapping.
func release(b []byte) {
	_ = syscall.Madvise(b, syscall.MADV_DONTNEED)
}
