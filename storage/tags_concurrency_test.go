package storage

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/inmemory"
)

// tagLinkGate holds every read of a tag's current link until limit of
// them are in flight at once, then lets all through, and records the
// most seen at once: reads done one at a time never reach the limit.
type tagLinkGate struct {
	driver.Driver
	limit int

	mu       sync.Mutex
	inflight int
	max      int
	open     chan struct{}
	opened   bool
}

func (g *tagLinkGate) Reader(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	if !strings.Contains(p, "/_manifests/tags/") || !strings.HasSuffix(p, "/current/link") {
		return g.Driver.Reader(ctx, p, off)
	}
	g.mu.Lock()
	g.inflight++
	g.max = max(g.max, g.inflight)
	if g.inflight >= g.limit && !g.opened {
		g.opened = true
		close(g.open)
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inflight--
		g.mu.Unlock()
	}()
	// The bound only turns reads done one at a time into a failure
	// (max stays below the limit) instead of a hang.
	select {
	case <-g.open:
	case <-time.After(5 * time.Second):
		g.mu.Lock()
		if !g.opened {
			g.opened = true
			close(g.open)
		}
		g.mu.Unlock()
	}
	return g.Driver.Reader(ctx, p, off)
}

func TestDeleteManifestReadsTagLinksUpToTheConcurrencyLimit(t *testing.T) {
	ctx := context.Background()
	const limit, tags = 4, 13
	gate := &tagLinkGate{Driver: inmemory.New(), limit: limit, open: make(chan struct{})}
	reg := New(gate, Options{DeleteEnabled: true, TagConcurrencyLimit: limit}, nil)
	repo := reg.Repository("app")
	img, other := newImage(t, "many tags"), newImage(t, "other")
	for i := range tags {
		img.push(t, repo, fmt.Sprintf("t%d", i))
	}
	other.push(t, repo, "keep")
	if err := repo.DeleteManifest(ctx, img.digest); err != nil {
		t.Fatal(err)
	}
	if gate.max != limit {
		t.Errorf("at most %d tag links read at once, want exactly the limit %d", gate.max, limit)
	}
	left, _, err := repo.Tags(ctx, 0, "")
	if err != nil || len(left) != 1 || left[0] != "keep" {
		t.Errorf("tags after delete: %q, %v; want only keep", left, err)
	}
}
