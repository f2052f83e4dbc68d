package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
			rows:  []row{{"S1", fmt.Sprintf("push one %s blob in one streamed PATCH + PUT", sizeText(sz.big)), "MB/s", throughput, 4}},
			fresh: true,
			measure: func(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
				v := h.big.variant(3)
				start := time.Now()
				if err := c.pushStreamed(ctx, "bench/streamed", v.d, v); err != nil {
					return nil, err
				}
				return []float64{float64(v.size()) / time.Since(start).Seconds() / mb}, nil
			},
		},
		{
			rows:  []row{{"S2", fmt.Sprintf("push one %s blob in %s PATCHes", sizeText(sz.big), sizeText(sz.chunk)), "MB/s", throughput, 3}},
			fresh: true,
			measure: func(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
				v := h.big.variant(2)
				start := time.Now()
				if err := c.pushChunked(ctx, "bench/chunked", v.d, v, v.size(), sz.chunk); err != nil {
					return nil, err
				}
				return []float64{float64(v.size()) / time.Since(start).Seconds() / mb}, nil
			},
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
			rows:    []row{{"S5", fmt.Sprintf("list %d tags, pages of %d", sz.cloudTags, sz.tagPage), "ms", duration, 20}},
			setup:   seedTags,
			measure: measureSeededTags,
		},
		{
			rows:    []row{{"S6", fmt.Sprintf("_catalog of %d repositories, pages of %d", sz.repos, sz.tagPage), "ms", duration, 10}},
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

// pushStreamed uploads r as d the way docker does: POST, one PATCH whose
// body is streamed with chunked encoding (no length known up front), and a
// PUT without a body.
func (c *client) pushStreamed(ctx context.Context, repo string, d digest.Digest, v *variant) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	u, err := c.resolve(loc, nil)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u, v.reader())
	if err != nil {
		return err
	}
	req.ContentLength = -1 // chunked, as docker sends a layer
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, _, err := c.do(req, http.StatusAccepted)
	if err != nil {
		return err
	}
	if u, err = c.resolve(resp.Header.Get("Location"), url.Values{"digest": {d.String()}}); err != nil {
		return err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, u, nil)
	if err != nil {
		return err
	}
	_, _, err = c.do(req, http.StatusCreated)
	return err
}

// configBlob is an image config, the size of a small real one.
var configBlob = []byte(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["/app"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"]},"history":[{"created":"2026-01-01T00:00:00Z","created_by":"COPY app /app"}]}`)

func setupConfigBlob(ctx context.Context, h *harness, _ *server, c *client) error {
	_, err := c.pushBytes(ctx, "bench/config", configBlob)
	return err
}

// The seeded setups write the registry layout straight into the server's
// bucket (unshaped, 64 at a time): pushing a hundred thousand tags through
// each registry over the shaped link would take longer than the run.
const seedParallel = 64

const layoutRoot = "docker/registry/v2/repositories/"

// seed writes each key with its body, seedParallel at a time.
func seed(ctx context.Context, st *storageRoot, n int, kv func(i int) (string, []byte)) error {
	if st.put == nil {
		return fmt.Errorf("seeding needs an object store")
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, seedParallel)
	for w := range seedParallel {
		wg.Go(func() {
			for errs[w] == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				k, b := kv(i)
				errs[w] = st.put(ctx, k, b)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// seedTags pushes one image through the registry, then lays out
// cloudTags tags pointing at it, as a registry writes a tag.
func seedTags(ctx context.Context, h *harness, s *server, c *client) error {
	if err := h.pushImage(ctx, c, "bench/tags", tagName(0)); err != nil {
		return err
	}
	link := []byte(h.manifest.String())
	return seed(ctx, s.stor, 2*(h.sz.cloudTags-1), func(i int) (string, []byte) {
		tag := layoutRoot + "bench/tags/_manifests/tags/" + tagName(1+i/2)
		if i%2 == 0 {
			return tag + "/current/link", link
		}
		return tag + "/index/sha256/" + h.manifest.Encoded() + "/link", link
	})
}

func measureSeededTags(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	took, tags, err := listTags(ctx, h, c)
	if err != nil {
		return nil, err
	}
	if len(tags) != h.sz.cloudTags || !slices.IsSorted(tags) {
		return nil, fmt.Errorf("listed %d tags (sorted: %v), want %d", len(tags), slices.IsSorted(tags), h.sz.cloudTags)
	}
	return []float64{took}, nil
}

func repoName(i int) string { return fmt.Sprintf("bench/r%05d", i) }

// seedRepos lays out repos repositories, each with a tag, its manifest's
// revision link and a layer link, as a push leaves them (the blobs
// themselves are not needed to list them).
func seedRepos(ctx context.Context, h *harness, s *server, c *client) error {
	if err := h.pushImage(ctx, c, repoName(0), "latest"); err != nil {
		return err
	}
	link := []byte(h.manifest.String())
	hex := h.manifest.Encoded()
	return seed(ctx, s.stor, 3*(h.sz.repos-1), func(i int) (string, []byte) {
		r := layoutRoot + repoName(1+i/3)
		switch i % 3 {
		case 0:
			return r + "/_manifests/tags/latest/current/link", link
		case 1:
			return r + "/_manifests/revisions/sha256/" + hex + "/link", link
		}
		return r + "/_layers/sha256/" + hex + "/link", link
	})
}

func measureCatalog(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	start := time.Now()
	path := fmt.Sprintf("/v2/_catalog?n=%d", h.sz.tagPage)
	var repos []string
	for path != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, err
		}
		var page struct{ Repositories []string }
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return nil, fmt.Errorf("catalog: status %d: %v", resp.StatusCode, err)
		}
		repos = append(repos, page.Repositories...)
		path = nextLink(resp.Header.Get("Link"))
	}
	took := float64(time.Since(start).Microseconds()) / 1000
	n := 0
	for _, r := range repos {
		if strings.HasPrefix(r, "bench/r") {
			n++
		}
	}
	if n != h.sz.repos || !slices.IsSorted(repos) {
		return nil, fmt.Errorf("catalog listed %d of %d repositories (sorted: %v)", n, h.sz.repos, slices.IsSorted(repos))
	}
	return []float64{took}, nil
}
