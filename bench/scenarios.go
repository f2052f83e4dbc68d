package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// rowKind says how a row's numbers compare.
type rowKind int

const (
	throughput rowKind = iota // higher is better; ratio Berth/Distribution
	duration                  // lower is better; ratio Distribution/Berth ("× faster")
	memory                    // lower is better; ratio Berth/Distribution, target an upper bound
	cost                      // lower is better; ratio Distribution/Berth ("× less")
	info                      // for the record: no ratio
)

// row is one line of the table.
type row struct {
	id, name, unit string
	kind           rowKind
	target         float64 // 0: none
}

func (r row) ratio(dist, berth float64) float64 {
	if r.kind == duration || r.kind == cost {
		return dist / berth
	}
	return berth / dist
}

func (r row) met(ratio float64) bool {
	if r.kind == memory {
		return ratio <= r.target
	}
	return ratio >= r.target
}

func (r row) targetText() string {
	switch {
	case r.target == 0:
		return "—"
	case r.kind == memory:
		return fmt.Sprintf("≤ %g×", r.target)
	case r.kind == duration:
		return fmt.Sprintf("≥ %g× faster", r.target)
	case r.kind == cost:
		return fmt.Sprintf("≤ %g× (≥ %g× less)", 1/r.target, r.target)
	}
	return fmt.Sprintf("≥ %g×", r.target)
}

func (r row) ratioText(ratio float64) string {
	switch r.kind {
	case duration:
		return fmt.Sprintf("%.2f× faster", ratio)
	case cost:
		return fmt.Sprintf("%.2f× less", ratio)
	case info:
		return "—"
	}
	return fmt.Sprintf("%.2f×", ratio)
}

// scenario is one measured workload, giving one value per row.
type scenario struct {
	rows []row
	// fresh scenarios get a new server (and empty storage) for every
	// measurement: writes must not find their content already there, and
	// peak RSS must be the scenario's own.
	fresh bool
	// redis gives each server a Redis as its blob descriptor cache.
	redis bool
	// shared puts both servers on one storage root, laid out once: setup
	// runs through the first server (Distribution) only. For listings of
	// content seeded in bulk, which neither server changes.
	shared bool
	// servers, when set, are the two servers to compare instead of
	// Distribution and Berth.
	servers func(h *harness) [2]serverSpec
	// omit runs Berth built with every cloud driver left out (make build
	// OMIT="azure gcs s3 swift") in Berth's place.
	omit bool
	// skip returns why the scenario cannot run here, or "".
	skip    func(h *harness) string
	setup   func(ctx context.Context, h *harness, s *server, c *client) error
	measure func(ctx context.Context, h *harness, s *server, c *client) ([]float64, error)
	// extra, when not nil, gives what is appended to both servers'
	// config (scenario 11's proxy section).
	extra func(ctx context.Context, h *harness) (string, error)
	// rounds, when above the run's, is how many rounds a run of at least
	// the default rounds gives the scenario: for one whose measurement is
	// a single sample a fraction of a second of CPU long, which the
	// machine moves by ±15 % from one round to the next (row 10's docker
	// push and pull).
	rounds int
}

const (
	mb  = 1e6
	mib = 1 << 20
)

func (h *harness) scenarios() []scenario {
	if h.backend != "filesystem" {
		return h.cloudScenarios()
	}
	sz := h.sz
	return []scenario{
		{
			rows: []row{{"1", fmt.Sprintf("pull one %s blob", sizeText(sz.big)), "MB/s", throughput, 1.4}},
			setup: func(ctx context.Context, h *harness, _ *server, c *client) error {
				return h.pushBig(ctx, c, "bench/pull", 0)
			},
			measure: func(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
				v := h.big.variant(0)
				start := time.Now()
				var total int64
				for range sz.pulls {
					n, err := rawPull(ctx, s.addr, "/v2/bench/pull/blobs/"+v.d.String(), h.devNull)
					if err != nil {
						return nil, err
					}
					if n != v.size() {
						return nil, fmt.Errorf("pulled %d bytes, want %d", n, v.size())
					}
					total += n
				}
				return []float64{float64(total) / time.Since(start).Seconds() / mb}, nil
			},
		},
		{
			rows:  []row{{"2", fmt.Sprintf("push one %s blob, monolithic PUT", sizeText(sz.big)), "MB/s", throughput, 1.0}},
			fresh: true,
			measure: func(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
				v := h.big.variant(1)
				start := time.Now()
				if err := c.pushBlob(ctx, "bench/push", v.d, v.reader(), v.size()); err != nil {
					return nil, err
				}
				return []float64{float64(v.size()) / time.Since(start).Seconds() / mb}, nil
			},
		},
		{
			rows:    []row{{"3", fmt.Sprintf("push one %s blob in %s PATCHes", sizeText(sz.big), sizeText(sz.chunk)), "MB/s", throughput, 1.3}},
			fresh:   true,
			measure: measureChunkedPush,
		},
		{
			rows:    []row{{"4", fmt.Sprintf("push %d blobs of 64 KiB, 16 at a time", sz.smallBlobs), "blobs/s", throughput, 2}},
			fresh:   true,
			measure: measureSmallPushes,
		},
		{
			rows:    hammerRows("5", "GET a 1 KiB blob, 32 connections", 10),
			setup:   setupSmallBlob,
			measure: measureSmallGets,
		},
		{
			rows:  hammerRows("6", "HEAD a blob, 32 connections", 3),
			setup: setupSmallBlob,
			measure: func(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
				req := rawRequest("HEAD", s.addr, "/v2/bench/small/blobs/"+h.small.String())
				return loadVals(rawHammer(ctx, s, 32, sz.load, [][]byte{req}, true, -1))
			},
		},
		{
			rows: hammerRows("7", "GET a manifest by tag and by digest, 32 connections", 3),
			setup: func(ctx context.Context, h *harness, _ *server, c *client) error {
				return h.pushImage(ctx, c, "bench/manifest", "latest")
			},
			measure: measureManifestGets,
		},
		{
			rows: hammerRows("7d", "GET a manifest by digest, 32 connections", 0),
			setup: func(ctx context.Context, h *harness, _ *server, c *client) error {
				return h.pushImage(ctx, c, "bench/manifest", "latest")
			},
			measure: measureManifestDigestGets,
		},
		{
			rows:  hammerRows("7r", "the same with the Redis cache (blobdescriptor: redis), 32 connections", 0),
			redis: true,
			skip:  redisSkip,
			setup: func(ctx context.Context, h *harness, _ *server, c *client) error {
				return h.pushImage(ctx, c, "bench/manifest", "latest")
			},
			measure: measureManifestGets,
		},
		{
			rows: []row{
				{"8", fmt.Sprintf("list %d tags, pages of %d, unchanged for a second", sz.tags, sz.tagPage), "ms", duration, 5},
				{"8b", "the same, right after a tag was added", "ms", duration, 0},
			},
			setup:   setupTags,
			measure: measureTags,
		},
		{
			rows: []row{
				{"9", fmt.Sprintf("%d concurrent %s pushes: peak RSS", sz.concurrent, sizeText(sz.big)), "MiB", memory, 0.75},
				{"9b", fmt.Sprintf("%d concurrent %s pushes: aggregate", sz.concurrent, sizeText(sz.big)), "MB/s", throughput, 0},
				{"9c", fmt.Sprintf("%d concurrent %s pushes: peak anonymous RSS (sampled)", sz.concurrent, sizeText(sz.big)), "MiB", memory, 0},
			},
			fresh:   true,
			measure: measureConcurrentPushes,
		},
		{
			rows: []row{
				{"9d", "the same, peak RSS of Berth built with OMIT=\"azure gcs s3 swift\"", "MiB", memory, 0.5},
			},
			fresh: true,
			omit:  true,
			measure: func(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
				v, err := measureConcurrentPushes(ctx, h, s, c)
				if err != nil {
					return nil, err
				}
				return v[:1], nil
			},
		},
		{
			rows: []row{
				// docker's own CPU bounds the wall time (10c): the
				// target is the registry's share (10b).
				{"10", fmt.Sprintf("docker push + pull, %d layers", sz.layers), "s", duration, 0},
				{"10b", "registry CPU during them (user + system)", "s", cost, 2},
				{"10c", "docker's CPU during them (daemon and its children, CLI), beside that registry", "s", info, 0},
			},
			fresh:   true,
			skip:    func(h *harness) string { return h.dockerSkip },
			setup:   setupDocker,
			measure: measureDocker,
			rounds:  7,
		},
		{
			rows: []row{
				{"10d", "registry CPU for the same push and pull, sent as docker sends them by a Go client instead of docker", "s", cost, 0},
			},
			fresh:   true,
			measure: measureDockerLike,
		},
		{
			// Every GET is a pull event, spooled and sent to the endpoint:
			// Berth without an endpoint stands in Distribution's column.
			rows: append(hammerRows("11", "GET a 1 KiB blob, 32 connections, one webhook endpoint: Berth with it (Berth column) against Berth without (Distribution column)", 0.5),
				row{"11d", "events the endpoint received during the GETs, per request served", "events/req", info, 0},
				row{"11e", "then the time until it received the last one", "s", info, 0}),
			servers: (*harness).webhookSpecs,
			setup:   setupSmallBlob,
			measure: measureWebhookGets,
		},
		{
			rows: []row{
				{"12", fmt.Sprintf("mirror: cold pull of a %d-layer image", sz.layers), "s", duration, 0},
				{"12b", "mirror: warm pull of it", "s", duration, 0},
				{"12c", fmt.Sprintf("mirror: upstream MiB for %d concurrent cold pulls of one %s blob", mirrorClients, sizeText(sz.mirrorBlob())), "MiB", cost, 0},
			},
			fresh:   true,
			extra:   func(ctx context.Context, h *harness) (string, error) { return h.mirrorConfig(ctx) },
			measure: measureMirror,
		},
	}
}

// hammerRows are the rows of a request-rate scenario: the rate, with its
// target, and, for the record, what each server spent per request and
// what the load generator spent beside it (see load).
// measureManifestGets GETs the pushed image's manifest by tag and by
// digest, alternately, on 32 connections.
func measureManifestGets(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	accept := "Accept: " + ociManifest + ", application/vnd.docker.distribution.manifest.v2+json"
	reqs := [][]byte{
		rawRequest("GET", s.addr, "/v2/bench/manifest/manifests/latest", accept),
		rawRequest("GET", s.addr, "/v2/bench/manifest/manifests/"+h.manifest.String(), accept),
	}
	return loadVals(rawHammer(ctx, s, 32, h.sz.load, reqs, false, int64(len(h.manifestPayload))))
}

// measureManifestDigestGets is scenario 7d (and S7d): GETs of one
// manifest by digest only, the request a pull makes for each image of an
// index and that content-addressed clients make for everything.
func measureManifestDigestGets(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	accept := "Accept: " + ociManifest + ", application/vnd.docker.distribution.manifest.v2+json"
	req := rawRequest("GET", s.addr, "/v2/bench/manifest/manifests/"+h.manifest.String(), accept)
	return loadVals(rawHammer(ctx, s, 32, h.sz.load, [][]byte{req}, false, int64(len(h.manifestPayload))))
}

func hammerRows(id, name string, target float64) []row {
	return []row{
		{id, name, "req/s", throughput, target},
		{id + "b", "server CPU per request (user + system)", "µs", cost, 0},
		{id + "c", "load generator CPU per request, beside that server", "µs", info, 0},
	}
}

func loadVals(l load, err error) ([]float64, error) {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return []float64{l.rps, us(l.serverCPU), us(l.clientCPU)}, err
}

// pushBig pushes variant i of the big blob.
func (h *harness) pushBig(ctx context.Context, c *client, repo string, i int) error {
	v := h.big.variant(i)
	return c.pushBlob(ctx, repo, v.d, v.reader(), v.size())
}

// measureSmallGets is scenario 5: GETs of the small blob, as fast as 32
// connections go.
func measureSmallGets(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	req := rawRequest("GET", s.addr, "/v2/bench/small/blobs/"+h.small.String())
	return loadVals(rawHammer(ctx, s, 32, h.sz.load, [][]byte{req}, false, 1024))
}

// measureWebhookGets is measureSmallGets with what the webhook received
// meanwhile (below 1 per request, Berth's sender fell behind and the
// spool grew), and then how long the rest took to arrive: the next
// measurement starts only once it did, so that no server pays for the
// deliveries of another.
func measureWebhookGets(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	before := h.webhook.events.Load()
	vals, err := measureSmallGets(ctx, h, s, c)
	if err != nil {
		return nil, err
	}
	during := h.webhook.events.Load() - before
	served := vals[0] * h.sz.load.Seconds()
	rest, err := h.webhook.drained(ctx)
	if err != nil {
		return nil, err
	}
	return append(vals, float64(during)/served, rest.Seconds()), nil
}

func setupSmallBlob(ctx context.Context, h *harness, _ *server, c *client) error {
	d, err := c.pushBytes(ctx, "bench/small", randomBytes(1, 1024))
	h.small = d
	return err
}

func measureSmallPushes(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	blobs := h.smallBlobs()
	start := time.Now()
	if err := forEach(ctx, len(blobs), 16, func(ctx context.Context, i int) error {
		_, err := c.pushBytes(ctx, "bench/small-pushes", blobs[i])
		return err
	}); err != nil {
		return nil, err
	}
	return []float64{float64(len(blobs)) / time.Since(start).Seconds()}, nil
}

// smallBlobs are the distinct 64 KiB blobs of scenario 4, made once.
func (h *harness) smallBlobs() [][]byte {
	h.smallOnce.Do(func() {
		for i := range h.sz.smallBlobs {
			h.smallData = append(h.smallData, randomBytes(uint64(1000+i), 64<<10))
		}
	})
	return h.smallData
}

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

// emptyConfig is the config of the harness's images: no layer history,
// which no registry reads.
var emptyConfig = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)

// descriptor and imageManifest are the JSON of an image manifest, OCI or
// docker's schema 2, which share it.
type descriptor struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

type imageManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// pushImage pushes a one-layer image and tags it; its manifest digest is
// kept in h.manifest (the same bytes on both servers).
func (h *harness) pushImage(ctx context.Context, c *client, repo, tag string) error {
	layer := randomBytes(2, 2048)
	cd, err := c.pushBytes(ctx, repo, emptyConfig)
	if err != nil {
		return err
	}
	ld, err := c.pushBytes(ctx, repo, layer)
	if err != nil {
		return err
	}
	m, err := json.Marshal(imageManifest{2, ociManifest,
		descriptor{"application/vnd.oci.image.config.v1+json", cd, int64(len(emptyConfig))},
		[]descriptor{{"application/vnd.oci.image.layer.v1.tar+gzip", ld, int64(len(layer))}}})
	if err != nil {
		return err
	}
	h.manifest = digest.FromBytes(m)
	h.manifestPayload = m
	return c.putManifest(ctx, repo, tag, ociManifest, m)
}

func tagName(i int) string { return fmt.Sprintf("t%05d", i) }

func setupTags(ctx context.Context, h *harness, _ *server, c *client) error {
	if err := h.pushImage(ctx, c, "bench/tags", tagName(0)); err != nil {
		return err
	}
	var next atomic.Int64
	next.Store(1)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for w := range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= h.sz.tags || errs[w] != nil {
					return
				}
				errs[w] = c.putManifest(ctx, "bench/tags", tagName(i), ociManifest, h.manifestPayload)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// tagsQuiet is how long the tags are left alone before row 8's listings:
// longer than storage's dirTimeMargin, so that the state measured is
// "tags that did not change in the last second" on every round, and not
// whatever the previous round's duration left it in.
const tagsQuiet = 1500 * time.Millisecond

// measureTags gives the median time of three whole listings (page by page,
// following the Link header) of tags that have not changed for a second
// (row 8), then of three listings each right after a new tag was added
// (row 8b), which must show it.
func measureTags(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	var quiet, fresh []float64
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(tagsQuiet):
	}
	listed := 0
	for range 3 {
		took, tags, err := listTags(ctx, h, c)
		if err != nil {
			return nil, err
		}
		// The setup's tags, and those earlier rounds' row 8b added.
		setup := len(tags) - countPrefix(tags, newTagPrefix)
		if setup != h.sz.tags {
			return nil, fmt.Errorf("listed %d of the setup's tags, want %d", setup, h.sz.tags)
		}
		listed = len(tags)
		quiet = append(quiet, took)
	}
	for range 3 {
		tag := fmt.Sprintf("%s%d", newTagPrefix, time.Now().UnixNano())
		if err := c.putManifest(ctx, "bench/tags", tag, ociManifest, h.manifestPayload); err != nil {
			return nil, err
		}
		took, tags, err := listTags(ctx, h, c)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(tags, tag) || len(tags) != listed+1 {
			return nil, fmt.Errorf("the listing right after tag %s was added has %d tags, want %d with it", tag, len(tags), listed+1)
		}
		listed = len(tags)
		fresh = append(fresh, took)
	}
	return []float64{median(quiet), median(fresh)}, nil
}

// newTagPrefix starts the names of the tags row 8b adds.
const newTagPrefix = "zz-new-"

func countPrefix(names []string, prefix string) int {
	n := 0
	for _, s := range names {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// listTags lists every tag of bench/tags, page by page, and gives the
// time it took in milliseconds.
func listTags(ctx context.Context, h *harness, c *client) (float64, []string, error) {
	start := time.Now()
	path := fmt.Sprintf("/v2/bench/tags/tags/list?n=%d", h.sz.tagPage)
	var tags []string
	for path != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
		if err != nil {
			return 0, nil, err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		var page struct{ Tags []string }
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return 0, nil, fmt.Errorf("tags list: status %d: %v", resp.StatusCode, err)
		}
		tags = append(tags, page.Tags...)
		path = nextLink(resp.Header.Get("Link"))
	}
	return float64(time.Since(start).Microseconds()) / 1000, tags, nil
}

// nextLink reads the target of a Link header (`<url>; rel="next"`).
func nextLink(link string) string {
	s, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(link), "<"), ">")
	if !ok {
		return ""
	}
	if i := strings.Index(s, "/v2/"); i > 0 {
		s = s[i:] // an absolute URL: keep the path and query
	}
	return s
}

func measureConcurrentPushes(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	n := h.sz.concurrent
	errs := make([]error, n)
	var wg sync.WaitGroup
	anon := s.sampleAnon()
	start := time.Now()
	for i := range n {
		wg.Go(func() { errs[i] = h.pushBig(ctx, c, fmt.Sprintf("bench/concurrent-%d", i), 10+i) })
	}
	wg.Wait()
	el := time.Since(start)
	peakAnon := anon()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	rss, err := s.peakRSS()
	if err != nil {
		return nil, err
	}
	total := float64(n) * float64(h.big.size)
	return []float64{float64(rss) / mib, total / el.Seconds() / mb, float64(peakAnon) / mib}, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// measureChunkedPush pushes the big blob in PATCHes of the chunk size
// (rows 3 and S2) and gives the throughput.
func measureChunkedPush(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	v := h.big.variant(2)
	start := time.Now()
	if err := c.pushChunked(ctx, "bench/chunked", v.d, v, v.size(), h.sz.chunk); err != nil {
		return nil, err
	}
	return []float64{float64(v.size()) / time.Since(start).Seconds() / mb}, nil
}
