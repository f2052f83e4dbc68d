package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/storage/driver"
)

// countedWriter counts the Write calls a driver's writer gets.
type countedWriter struct {
	driver.FileWriter
	n *atomic.Int32
}

func (w countedWriter) Write(p []byte) (int, error) {
	w.n.Add(1)
	return w.FileWriter.Write(p)
}

// pieces gives r in reads of at most n bytes, as a chunked request body
// arrives, then fails with err (io.EOF for a whole body).
type pieces struct {
	r   io.Reader
	n   int
	err error
}

func (p *pieces) Read(b []byte) (int, error) {
	n, err := p.r.Read(b[:min(len(b), p.n)])
	if err == io.EOF {
		return n, p.err
	}
	return n, err
}

// TestBodyInPiecesIsWrittenInWholeBuffers: a body that arrives 1 KiB at
// a time reaches the driver in writes of the whole copy buffer, not one
// per piece (a system call each on a disk), and a body cut short keeps
// every byte that arrived.
func TestBodyInPiecesIsWrittenInWholeBuffers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		var opened, n atomic.Int32
		repo := New(countingWrites{Driver: open(), n: &opened, writes: &n}, Options{}, nil).Repository("app")
		content := bytes.Repeat([]byte("0123456789abcdef"), 600<<10/16)

		u, err := repo.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.ReadFrom(&pieces{r: bytes.NewReader(content), n: 1 << 10, err: io.EOF}); err != nil {
			t.Fatalf("ReadFrom: %v", err)
		}
		// 600 KiB in a 256 KiB buffer: three writes, against 600.
		if got := n.Load(); got != 3 {
			t.Errorf("600 KiB in pieces of 1 KiB took %d writes, want 3", got)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(content)); err != nil {
			t.Fatalf("Commit: %v", err)
		}

		// Cut after 100 KiB: what arrived is written, the error returned.
		cut := errors.New("client went away")
		u, err = repo.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := u.ReadFrom(&pieces{r: bytes.NewReader(content[:100<<10]), n: 1 << 10, err: cut})
		if !errors.Is(err, cut) || got != 100<<10 || u.Size() != 100<<10 {
			t.Fatalf("ReadFrom of a body cut at 100 KiB: %d bytes, size %d, %v; want 102400, the cut", got, u.Size(), err)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(content[:100<<10])); err != nil {
			t.Fatalf("Commit of what arrived: %v", err)
		}
	})
}
