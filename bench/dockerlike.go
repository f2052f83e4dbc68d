package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
)

// Row 10d sends the requests of row 10 without docker: for each layer a
// HEAD, a POST, one PATCH with a chunked body in 32 KiB pieces and a PUT,
// five layers at a time, then the config and the manifest; the pull
// fetches the manifest and three blobs at a time. docker takes a second or
// two over a push and wakes the server with small pieces of work all that
// time, which costs every server, a minimal one included, tens of
// milliseconds beyond the requests themselves, and spreads row 10b's
// cycles over ±15 %. This row measures the registry's share of the same
// requests, with far less spread: the measure for work on 10b's cost.

const (
	// dockerChunk is the size of the pieces docker writes a layer's
	// chunked PATCH body in.
	dockerChunk = 32 << 10
	// dockerPushes and dockerPulls are the daemon's defaults for the
	// layers it sends and fetches at once (max-concurrent-uploads and
	// max-concurrent-downloads).
	dockerPushes = 5
	dockerPulls  = 3
)

const dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

// measureDockerLike pushes the row's image as docker does and pulls it
// back, and returns the registry's CPU time in the two.
func measureDockerLike(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	const repo = "bench/dockerlike"
	layers := make([][]byte, h.sz.layers)
	for i := range layers {
		layers[i] = randomBytes(uint64(7000+i), int(h.sz.layerSize))
	}
	c0, err := s.cpu()
	if err != nil {
		return nil, err
	}
	descs := make([]descriptor, len(layers))
	if err := forEach(ctx, len(layers), dockerPushes, func(ctx context.Context, i int) (err error) {
		descs[i], err = c.pushLikeDocker(ctx, repo, layers[i], "application/vnd.docker.image.rootfs.diff.tar.gzip")
		return err
	}); err != nil {
		return nil, err
	}
	cd, err := c.pushLikeDocker(ctx, repo, emptyConfig, "application/vnd.docker.container.image.v1+json")
	if err != nil {
		return nil, err
	}
	m, err := json.Marshal(imageManifest{2, dockerManifest, cd, descs})
	if err != nil {
		return nil, err
	}
	if err := c.putManifest(ctx, repo, "1", dockerManifest, m); err != nil {
		return nil, err
	}
	blobs := append(descs, cd)
	if err := c.getManifest(ctx, repo, "1"); err != nil {
		return nil, err
	}
	if err := forEach(ctx, len(blobs), dockerPulls, func(ctx context.Context, i int) error {
		return c.getBlob(ctx, repo, blobs[i].Digest)
	}); err != nil {
		return nil, err
	}
	c1, err := s.cpu()
	if err != nil {
		return nil, err
	}
	return []float64{(c1 - c0).Seconds()}, nil
}

// forEach runs do for 0..n-1 on conc workers, each taking the next index
// when it is done with one, and returns the first error; on an error the
// calls in flight see their context cancelled and no new one starts.
func forEach(ctx context.Context, n, conc int, do func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := do(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// pushLikeDocker pushes b as docker pushes a layer: a HEAD that finds it
// missing, then pushStreamed in docker's pieces.
func (c *client) pushLikeDocker(ctx context.Context, repo string, b []byte, mediaType string) (descriptor, error) {
	d := digest.FromBytes(b)
	desc := descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.url("/v2/"+repo+"/blobs/"+d.String()), nil)
	if err != nil {
		return desc, err
	}
	if _, _, err := c.do(req, http.StatusNotFound); err != nil {
		return desc, err
	}
	_, err = c.pushStreamed(ctx, repo, d, &pieces{b: b, n: dockerChunk})
	return desc, err
}

// pieces reads b at most n bytes at a time, so that the transport writes
// a chunk per piece, as docker's copy of a layer into its request does.
type pieces struct {
	b []byte
	n int
}

func (p *pieces) Read(q []byte) (int, error) {
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	k := copy(q[:min(len(q), p.n)], p.b)
	p.b = p.b[k:]
	return k, nil
}

func (c *client) getManifest(ctx context.Context, repo, ref string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v2/"+repo+"/manifests/"+ref), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", dockerManifest)
	_, _, err = c.do(req, http.StatusOK)
	return err
}

func (c *client) getBlob(ctx context.Context, repo string, d digest.Digest) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v2/"+repo+"/blobs/"+d.String()), nil)
	if err != nil {
		return err
	}
	_, n, err := c.do(req, http.StatusOK)
	if err == nil && n == 0 {
		err = fmt.Errorf("GET %s: empty body", d)
	}
	return err
}
