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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Rows S5 and S6 list content written straight into the bucket (unshaped,
// seedParallel at a time): pushing a hundred thousand tags through each
// registry over the shaped link would take longer than the run. Both
// servers list one bucket, seeded once (scenario.shared): neither changes
// it, and they take turns.
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

const tagsDirKey = layoutRoot + "bench/tags/_manifests/tags/"

// seedTags pushes one image through the registry, then lays out the other
// cloudTags-1 tags pointing at it. Each gets its current/link, which is
// what makes a tag for both servers' listings and lookups; the
// index/<digest>/link a push adds beside it is left out, which halves the
// seeding and changes nothing a listing of the tags directory reads.
func seedTags(ctx context.Context, h *harness, s *server, c *client) error {
	if err := h.pushImage(ctx, c, "bench/tags", tagName(0)); err != nil {
		return err
	}
	link := []byte(h.manifest.String())
	return seed(ctx, s.stor, h.sz.cloudTags-1, func(i int) (string, []byte) {
		return tagsDirKey + tagName(1+i) + "/current/link", link
	})
}

// withFloor is a listing row and, on S3, its floor: the same listings
// sent straight to the store (measured with the S3 API only, so the
// other stores' runs have no floor row).
func (h *harness) withFloor(r, floor row) []row {
	if h.backend != "s3" {
		return []row{r}
	}
	return []row{r, floor}
}

// tagSampleAbove is the number of pages above which Distribution's S5 is
// timed on a sample of pages: it lists every tag for every page, so its
// time grows with the square of the count (6.3 s a page at 20 000 tags
// here, about 30 s a page at 100 000: close to an hour for all of them).
// Each of its pages costs the same wherever it starts, since each lists
// all tags; Berth's column times every page.
const tagSampleAbove = 20

// tagSamples is how many evenly spread pages (the first and the last
// among them) Distribution's S5 times when sampled.
const tagSamples = 5

func (sz sizes) tagPages() int { return (sz.cloudTags + sz.tagPage - 1) / sz.tagPage }

// sampledPages are the pages Distribution's S5 times, or nil for all.
func (sz sizes) sampledPages() []int {
	pages := sz.tagPages()
	if pages <= tagSampleAbove {
		return nil
	}
	var out []int
	for i := range tagSamples {
		out = append(out, i*(pages-1)/(tagSamples-1))
	}
	return out
}

// tagSampleNote tells, in S5's name, that Distribution's number is an
// estimate and how it was made.
func (sz sizes) tagSampleNote() string {
	pages := sz.sampledPages()
	if pages == nil {
		return ""
	}
	return fmt.Sprintf(" (Distribution: estimated, the mean of %d evenly spread pages of %d timed, × %d)",
		len(pages), sz.tagPages(), sz.tagPages())
}

func measureSeededTags(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	var took float64
	if pages := h.sz.sampledPages(); pages != nil && s.name == "distribution" {
		var err error
		if took, err = sampleTagPages(ctx, h, c, pages); err != nil {
			return nil, err
		}
	} else {
		var tags []string
		var err error
		if took, tags, err = listTags(ctx, h, c); err != nil {
			return nil, err
		}
		if len(tags) != h.sz.cloudTags || !slices.IsSorted(tags) {
			return nil, fmt.Errorf("listed %d tags (sorted: %v), want %d", len(tags), slices.IsSorted(tags), h.sz.cloudTags)
		}
	}
	if s.stor.shaped == nil {
		return []float64{took}, nil // no floor row off S3 (withFloor)
	}
	floor, err := rawTagPages(ctx, h, s.stor)
	if err != nil {
		return nil, err
	}
	return []float64{took, floor}, nil
}

// sampleTagPages times the given pages of the tag list, each asked for
// with the last tag of the page before, checks each, and returns the
// estimate for all pages: their mean time × the number of pages.
func sampleTagPages(ctx context.Context, h *harness, c *client, pages []int) (float64, error) {
	per := h.sz.tagPage
	var sum time.Duration
	for _, p := range pages {
		q := url.Values{"n": {fmt.Sprint(per)}}
		if p > 0 {
			q.Set("last", tagName(p*per-1))
		}
		start := time.Now()
		tags, next, err := getTagPage(ctx, c, "/v2/bench/tags/tags/list?"+q.Encode())
		sum += time.Since(start)
		if err != nil {
			return 0, err
		}
		// Distribution links a next page from every full page, the last
		// one too: only a page before the last must have a link.
		first, end := p*per, min((p+1)*per, h.sz.cloudTags)
		if len(tags) != end-first || tags[0] != tagName(first) || tags[len(tags)-1] != tagName(end-1) || (next == "" && end < h.sz.cloudTags) {
			return 0, fmt.Errorf("tag page %d: %d tags from %q, next %q; want %d from %q", p, len(tags), tags, next, end-first, tagName(first))
		}
		fmt.Fprintf(h.log, "bench:     distribution tag page %d of %d: %s\n", p+1, h.sz.tagPages(), time.Since(start).Round(time.Millisecond))
	}
	mean := sum / time.Duration(len(pages))
	return float64((mean * time.Duration(h.sz.tagPages())).Microseconds()) / 1000, nil
}

// getTagPage gets one page of a tag list and the path of the next.
func getTagPage(ctx context.Context, c *client, path string) ([]string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var page struct{ Tags []string }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("tags list: status %d: %v", resp.StatusCode, err)
	}
	if len(page.Tags) == 0 {
		return nil, "", fmt.Errorf("tags list %s: an empty page", path)
	}
	return page.Tags, nextLink(resp.Header.Get("Link")), nil
}

// rawTagPages lists the tags directory straight from the store through
// the shaped link as a page-at-a-time lister must: one ListObjectsV2 with
// the delimiter "/" from StartAfter for each page. It is the floor of a
// tag page on this store: MinIO reads the whole directory for each
// listing, whatever it returns.
func rawTagPages(ctx context.Context, h *harness, st *storageRoot) (float64, error) {
	start := time.Now()
	n, after := 0, ""
	for range h.sz.tagPages() + 1 {
		in := &s3.ListObjectsV2Input{Bucket: aws.String("registry"), Prefix: aws.String(tagsDirKey),
			Delimiter: aws.String("/"), MaxKeys: aws.Int32(int32(h.sz.tagPage))}
		if after != "" {
			in.StartAfter = aws.String(after)
		}
		out, err := st.shaped.ListObjectsV2(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("raw tag listing: %w", err)
		}
		for _, p := range out.CommonPrefixes {
			// A store may list the directory StartAfter names again (its
			// keys sort after it); MinIO does not.
			if aws.ToString(p.Prefix) > after {
				n++
			}
		}
		if len(out.CommonPrefixes) < h.sz.tagPage {
			break
		}
		after = aws.ToString(out.CommonPrefixes[len(out.CommonPrefixes)-1].Prefix)
	}
	if n != h.sz.cloudTags {
		return 0, fmt.Errorf("raw tag listing: %d tags, want %d", n, h.sz.cloudTags)
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
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

// catalogComplete is the key Berth writes once its catalog index lists
// every repository (storage/catalogindex.go).
const catalogComplete = "docker/registry/v2/_berth/catalog/complete"

// awaitCatalogIndex has Berth build its catalog index of the seeded
// bucket, which has none (the seeding writes the layout only, as
// Distribution would), and returns how long that took in ms: from a first
// catalog request, which starts the build in the background, until the
// index is complete. The bucket is shared and the server runs for every
// round, so the build happens once: later rounds report the first
// round's time. Distribution keeps no index: 0.
func (h *harness) awaitCatalogIndex(ctx context.Context, s *server, c *client) (float64, error) {
	if s.name != "berth" || s.stor.exists == nil {
		return 0, nil
	}
	if h.catalogBuild > 0 {
		return h.catalogBuild, nil
	}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v2/_catalog?n=1"), nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("catalog: status %d", resp.StatusCode)
	}
	deadline := time.Now().Add(15 * time.Minute)
	for {
		ok, err := s.stor.exists(ctx, catalogComplete)
		if err != nil {
			return 0, fmt.Errorf("catalog index: %w", err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("catalog index: not complete after 15 minutes")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	h.catalogBuild = float64(time.Since(start).Microseconds()) / 1000
	return h.catalogBuild, nil
}

func measureCatalog(ctx context.Context, h *harness, s *server, c *client) ([]float64, error) {
	build, err := h.awaitCatalogIndex(ctx, s, c)
	if err != nil {
		return nil, err
	}
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
	if s.stor.shaped == nil {
		return []float64{took, build}, nil
	}
	floor, err := rawRepoListings(ctx, h, s.stor)
	if err != nil {
		return nil, err
	}
	return []float64{took, floor, build}, nil
}

// rawRepoParallel is how many listings rawRepoListings runs at a time: as
// many as Berth's catalog walk (storage.catalogParallel).
const rawRepoParallel = 16

// rawRepoListings lists bench/ in pages from StartAfter and each
// repository directory in it once, straight from the store through the
// shaped link. It is the floor of a catalog that tells a repository by
// looking into its directory, the only way that sees what Distribution
// writes without walking every key below repositories/.
func rawRepoListings(ctx context.Context, h *harness, st *storageRoot) (float64, error) {
	start := time.Now()
	prefix := layoutRoot + "bench/"
	list := func(prefix, after string) ([]string, error) {
		in := &s3.ListObjectsV2Input{Bucket: aws.String("registry"), Prefix: aws.String(prefix), Delimiter: aws.String("/")}
		if after != "" {
			in.StartAfter = aws.String(after)
		}
		out, err := st.shaped.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("raw repository listing: %w", err)
		}
		var dirs []string
		for _, p := range out.CommonPrefixes {
			dirs = append(dirs, aws.ToString(p.Prefix))
		}
		return dirs, nil
	}
	repos := 0
	after := ""
	for range h.sz.repos/1000 + 2 {
		dirs, err := list(prefix, after)
		if err != nil {
			return 0, err
		}
		if len(dirs) == 0 {
			break
		}
		after = dirs[len(dirs)-1]
		var found atomic.Int64
		errs := make([]error, len(dirs))
		sem := make(chan struct{}, rawRepoParallel)
		var wg sync.WaitGroup
		for i, d := range dirs {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				kids, err := list(d, "")
				errs[i] = err
				for _, k := range kids {
					if strings.HasPrefix(strings.TrimPrefix(k, d), "_") {
						found.Add(1)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return 0, err
			}
		}
		repos += int(found.Load())
	}
	if repos < h.sz.repos {
		return 0, fmt.Errorf("raw repository listing: %d repositories, want %d", repos, h.sz.repos)
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
}
