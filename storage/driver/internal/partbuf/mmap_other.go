//go:build !unix

package partbuf

func alloc(size int) []byte { return make([]byte, size) }

func release([]byte) {}
