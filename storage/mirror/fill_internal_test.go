package mirror

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"
)

// While a fetch has not matched its digest, a client reads every byte but
// the last, so a blob that then fails the check never reaches it whole.
func TestFillReaderHoldsTheLastByteUntilVerified(t *testing.T) {
	content := []byte("all of the blob")
	spool, err := os.CreateTemp(t.TempDir(), "spool")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spool.Write(content); err != nil {
		t.Fatal(err)
	}
	m := &Mirror{log: slog.New(slog.DiscardHandler)}
	f := &fill{m: m, src: &source{Upstream: Upstream{RemoteURL: "http://up"}}, d: digest.FromBytes(content), spool: spool,
		ready: make(chan struct{}), ended: make(chan struct{}), size: int64(len(content)), changed: make(chan struct{}), refs: 2}
	f.advance(int64(len(content))) // every byte arrived, not yet checked

	ctx, cancel := context.WithCancel(context.Background())
	r := &fillReader{f: f, ctx: ctx}
	got := make([]byte, len(content))
	n, _ := io.ReadAtLeast(r, got, len(content)-1)
	if n != len(content)-1 {
		t.Fatalf("read %d bytes before verification, want all but the last (%d)", n, len(content)-1)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(got[n:])
		done <- err
	}()
	bad := errors.New("digest mismatch")
	f.finish(bad)
	if err := <-done; !errors.Is(err, bad) {
		t.Fatalf("the last read gave %v, want the fetch's failure", err)
	}
	cancel()
	r.Close()
}
