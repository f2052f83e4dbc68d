package filesystem

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStartWritebackReachesTheKernel checks the system call itself: it
// succeeds on a file being written and fails on a closed one.
func TestStartWritebackReachesTheKernel(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := startWriteback(f, 0, 1<<20); err != nil {
		t.Errorf("startWriteback: %v", err)
	}
	f.Close()
	if err := startWriteback(f, 0, 1<<20); err == nil {
		t.Error("startWriteback on a closed file succeeded")
	}
}
