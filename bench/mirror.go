package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// mirrorClients is how many clients of scenario 12c pull one blob at once.
const mirrorClients = 16

// mirrorRepo is the repository scenario 12 pulls through the mirrors.
const mirrorRepo = "bench/mirror"

// mirrorBlob is the size of the blob of 12c: 64 MiB, or the big blob when
// that is smaller.
func (sz sizes) mirrorBlob() int64 { return min(64<<20, sz.big) }

// mirrorUpstream is the registry both servers mirror in scenario 12: a
// Distribution of its own, started on first use and stopped at the end of
// the run, holding an image of sz.layers layers and one blob for 12c.
type mirrorUpstream struct {
	once  sync.Once
	err   error
	srv   *server
	blobs []digest.Digest // the image's config and layers
	big   digest.Digest
}

// mirrorConfig starts the upstream on first use and returns the proxy
// section both servers run with.
func (h *harness) mirrorConfig(ctx context.Context) (string, error) {
	u := &h.mirror
	u.once.Do(func() { u.err = h.startMirrorUpstream(ctx) })
	if u.err != nil {
		return "", u.err
	}
	return "proxy:\n  remoteurl: " + u.srv.base() + "\n", nil
}

func (h *harness) startMirrorUpstream(ctx context.Context) error {
	u := &h.mirror
	srv, err := h.startServer(ctx, h.specs[0], "", false, "", nil)
	if err != nil {
		return fmt.Errorf("mirror upstream: %w", err)
	}
	u.srv = srv
	c := newClient(srv.base(), 4)
	defer c.close()
	cd, err := c.pushBytes(ctx, mirrorRepo, emptyConfig)
	if err != nil {
		return err
	}
	m := imageManifest{2, ociManifest, descriptor{"application/vnd.oci.image.config.v1+json", cd, int64(len(emptyConfig))}, nil}
	u.blobs = append(u.blobs, cd)
	for i := range h.sz.layers {
		d, err := c.pushBytes(ctx, mirrorRepo, randomBytes(uint64(1100+i), int(h.sz.layerSize)))
		if err != nil {
			return err
		}
		u.blobs = append(u.blobs, d)
		m.Layers = append(m.Layers, descriptor{"application/vnd.oci.image.layer.v1.tar", d, h.sz.layerSize})
	}
	payload, _ := json.Marshal(m)
	if err := c.putManifest(ctx, mirrorRepo, "1", m.MediaType, payload); err != nil {
		return err
	}
	u.big, err = c.pushBytes(ctx, mirrorRepo, randomBytes(1200, int(h.sz.mirrorBlob())))
	return err
}

func (h *harness) stopMirrorUpstream() {
	if h.mirror.srv != nil {
		h.mirror.srv.stop()
	}
}

// measureMirror pulls the image through a fresh mirror (cold), again
// (warm), then has mirrorClients clients pull one blob it does not have,
// and counts what the upstream sent for that blob.
func measureMirror(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	u := &h.mirror
	pull := func() (float64, error) {
		start := time.Now()
		if err := pullImage(ctx, h, s.addr, u.blobs); err != nil {
			return 0, err
		}
		return time.Since(start).Seconds(), nil
	}
	cold, err := pull()
	if err != nil {
		return nil, fmt.Errorf("cold pull: %w", err)
	}
	warm, err := pull()
	if err != nil {
		return nil, fmt.Errorf("warm pull: %w", err)
	}
	path := "/v2/" + mirrorRepo + "/blobs/" + u.big.String()
	before := upstreamBytes(u.srv, path)
	errs := make(chan error, mirrorClients)
	var wg sync.WaitGroup
	for range mirrorClients {
		wg.Go(func() {
			n, err := rawPull(ctx, s.addr, path, h.devNull)
			if err == nil && n != h.sz.mirrorBlob() {
				err = fmt.Errorf("pulled %d bytes, want %d", n, h.sz.mirrorBlob())
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return nil, err
		}
	}
	// The upstream logs a response once it has sent it: wait until its
	// count stops growing.
	sent := upstreamBytes(u.srv, path)
	for range 20 {
		time.Sleep(250 * time.Millisecond)
		now := upstreamBytes(u.srv, path)
		if now == sent && now > before {
			break
		}
		sent = now
	}
	return []float64{cold, warm, float64(sent-before) / mib}, nil
}

// pullImage GETs the image's manifest by tag, then its blobs four at a
// time, as a client pulls.
func pullImage(ctx context.Context, h *harness, addr string, blobs []digest.Digest) error {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return err
	}
	status, n, err := c.do(rawRequest("GET", addr, "/v2/"+mirrorRepo+"/manifests/1", "Accept: application/vnd.oci.image.manifest.v1+json"))
	if err == nil && status != 200 {
		err = fmt.Errorf("GET manifest: status %d", status)
	}
	if err == nil {
		err = c.discard(n, nil)
	}
	c.Close()
	if err != nil {
		return err
	}
	sem := make(chan struct{}, 4)
	errs := make(chan error, len(blobs))
	var wg sync.WaitGroup
	for _, d := range blobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := rawPull(ctx, addr, "/v2/"+mirrorRepo+"/blobs/"+d.String(), h.devNull)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// upstreamBytes sums the body bytes Distribution logged for GETs of path.
func upstreamBytes(s *server, path string) int64 {
	b, err := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if err != nil {
		return 0
	}
	var total int64
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.Contains(line, "response completed") || !strings.Contains(line, "http.request.method=GET") ||
			!strings.Contains(line, `http.request.uri="`+path+`"`) {
			continue
		}
		if _, rest, ok := strings.Cut(line, "http.response.written="); ok {
			f, _, _ := strings.Cut(rest, " ")
			n, _ := strconv.ParseInt(f, 10, 64)
			total += n
		}
	}
	return total
}
