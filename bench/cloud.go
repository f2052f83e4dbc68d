package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/opencontainers/go-digest"
)

// cloudScenarios are the rows of -backend s3 (S1–S9): what matters where
// production runs, an object store over a network where one connection
// carries tens of MB/s and each request costs milliseconds.
func (h *harness) cloudScenarios() []scenario {
	sz := h.sz
	return []scenario{
		{
			rows:    h.streamedPushRows(),
			fresh:   true,
			measure: measureStreamedPushWithFloor,
		},
		{
			rows:    h.chunkedPushRows(),
			fresh:   true,
			measure: measureChunkedPushWithFloor,
		},
		{
			rows: []row{{"S3", fmt.Sprintf("pull one %s blob, redirect disabled", sizeText(sz.big)), "MB/s", throughput, 3}},
			setup: func(ctx context.Context, h *harness, _ *server, c *client) error {
				return h.pushBig(ctx, c, "bench/pull", 0)
			},
			measure: func(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
				v := h.big.variant(0)
				start := time.Now()
				n, err := rawPull(ctx, s.addr, "/v2/bench/pull/blobs/"+v.d.String(), h.devNull)
				if err != nil {
					return nil, err
				}
				if n != v.size() {
					return nil, fmt.Errorf("pulled %d bytes, want %d", n, v.size())
				}
				return []float64{float64(n) / time.Since(start).Seconds() / mb}, nil
			},
		},
		{
			rows: []row{
				{"S4", fmt.Sprintf("%d concurrent %s pushes: peak RSS", sz.concurrent, sizeText(sz.big)), "MiB", memory, 0.5},
				{"S4b", fmt.Sprintf("%d concurrent %s pushes: aggregate", sz.concurrent, sizeText(sz.big)), "MB/s", throughput, 0},
				{"S4c", fmt.Sprintf("%d concurrent %s pushes: peak anonymous RSS (sampled)", sz.concurrent, sizeText(sz.big)), "MiB", memory, 0},
			},
			fresh:   true,
			skip:    skipConcurrentPushes,
			measure: measureConcurrentPushes,
		},
		{
			rows: h.withFloor(
				row{"S5", fmt.Sprintf("list %d tags, pages of %d%s", sz.cloudTags, sz.tagPage, sz.tagSampleNote()), "ms", duration, 20},
				row{"S5b", "the same pages straight from the store (ListObjectsV2 from StartAfter, one a page), through the same link", "ms", info, 0}),
			shared:  true,
			setup:   seedTags,
			measure: measureSeededTags,
		},
		{
			rows: append(h.withFloor(
				row{"S6", fmt.Sprintf("_catalog of %d repositories, pages of %d", sz.repos, sz.tagPage), "ms", duration, 10},
				row{"S6b", fmt.Sprintf("one ListObjectsV2 of each repository's directory straight from the store, %d at a time, through the same link", rawRepoParallel), "ms", info, 0}),
				row{"S6c", "Berth building its catalog index of them once, before S6 (started by a first catalog request; Distribution keeps none: 0)", "ms", info, 0}),
			shared:  true,
			setup:   seedRepos,
			measure: measureCatalog,
		},
		{
			rows:  hammerRows("S7", "GET a config blob, 32 connections", 10),
			setup: setupConfigBlob,
			measure: func(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
				req := rawRequest("GET", s.addr, "/v2/bench/config/blobs/"+digest.FromBytes(configBlob).String())
				return loadVals(rawHammer(ctx, s, 32, sz.load, [][]byte{req}, false, int64(len(configBlob))))
			},
		},
		{
			rows: hammerRows("S7d", "GET a manifest by digest, 32 connections", 0),
			setup: func(ctx context.Context, h *harness, _ *server, c *client) error {
				return h.pushImage(ctx, c, "bench/manifest", "latest")
			},
			measure: measureManifestDigestGets,
		},
		{
			rows: []row{
				{"S8", fmt.Sprintf("docker push + pull, %d layers", sz.layers), "s", duration, 0},
				{"S8b", "registry CPU during them (user + system)", "s", cost, 2},
				{"S8c", "docker's CPU during them (daemon and its children, CLI), beside that registry", "s", info, 0},
			},
			fresh:   true,
			skip:    func(h *harness) string { return h.dockerSkip },
			setup:   setupDocker,
			measure: measureDocker,
		},
		{
			// Fresh: every measurement pushes its blobs into an empty
			// bucket, so neither column finds them there already.
			rows:    fleetRows(sz),
			fresh:   true,
			redis:   true,
			servers: (*harness).fleetSpecs,
			skip:    fleetSkip,
			setup: func(ctx context.Context, h *harness, _ *server, c *client) error {
				return h.pushImage(ctx, c, "bench/manifest", "latest")
			},
			measure: measureFleet,
		},
	}
}

// pushStreamed uploads body as d the way docker does: POST, one PATCH
// whose body is streamed with chunked encoding (no length known up front),
// and a PUT without a body. It returns how long the PUT took.
func (c *client) pushStreamed(ctx context.Context, repo string, d digest.Digest, body io.Reader) (put time.Duration, err error) {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return 0, err
	}
	u, err := c.resolve(loc, nil)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u, body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = -1 // chunked, as docker sends a layer
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, _, err := c.do(req, http.StatusAccepted)
	if err != nil {
		return 0, err
	}
	if u, err = c.resolve(resp.Header.Get("Location"), url.Values{"digest": {d.String()}}); err != nil {
		return 0, err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, u, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	_, _, err = c.do(req, http.StatusCreated)
	return time.Since(start), err
}

// configBlob is an image config, the size of a small real one.
var configBlob = []byte(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["/app"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"]},"history":[{"created":"2026-01-01T00:00:00Z","created_by":"COPY app /app"}]}`)

func setupConfigBlob(ctx context.Context, h *harness, _ *server, c *client) error {
	_, err := c.pushBytes(ctx, "bench/config", configBlob)
	return err
}
