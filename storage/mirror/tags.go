package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/storage"
)

// An upstream may answer a page of tags shorter than asked and say with a
// Link header that more follow: Distribution 3.1 and Berth serve at most
// tags.maxtags (1 000 by default) whatever n asks, and some registries
// page a list nobody asked to page. The mirror asks for one tag more than
// its client wants, to know whether more follow, so without reading the
// Link it would end a list of 1 000 pages at its first page, as if that
// were all. It follows the upstream's pages until it has what the client
// asked for, within bounds a hostile upstream cannot stretch.
const (
	// maxTagPages bounds the upstream pages one page of the client costs;
	// past it the client gets a shorter page and a Link to the rest.
	maxTagPages = 16
	// maxAllTagPages and maxAllTags bound a list asked for whole (no n):
	// past them it is answered in part, with a Link to the rest.
	maxAllTagPages = 1000
	maxAllTags     = 1 << 20
)

// Tags lists the upstream's tags: n+1 of them when n > 0, the last of
// which tells whether more follow, or all of them when n is 0. When the
// upstream cannot be reached the cached tags answer, with a warning.
func (r *repository) Tags(ctx context.Context, n int, last string) ([]string, bool, error) {
	tags, more, err := r.upstreamTags(ctx, n, last)
	if err == nil || !upstreamDown(err) {
		return tags, more, err
	}
	local, more, lerr := r.Repository.Tags(ctx, n, last)
	if lerr != nil {
		return nil, false, err
	}
	r.stale(ctx, err)
	return local, more, nil
}

// upstreamTags gathers a page of n tags after last (every tag when n is
// 0) from as many of the upstream's pages as it takes, and whether more
// follow.
func (r *repository) upstreamTags(ctx context.Context, n int, last string) ([]string, bool, error) {
	want, pages := n+1, maxTagPages
	if n <= 0 {
		want, pages = maxAllTags, maxAllTagPages
	}
	q := url.Values{}
	if n > 0 {
		q.Set("n", strconv.Itoa(want))
	}
	if last != "" {
		q.Set("last", last)
	}
	var tags []string
	for range pages {
		page, next, err := r.src.up.tags(ctx, r.remote, q)
		if err != nil {
			return nil, false, err
		}
		added := 0
		for _, t := range page {
			// Kept sorted and without repeats whatever the upstream
			// sends, which also ends a loop of pages that go nowhere.
			if len(tags) == 0 && (last == "" || t > last) || len(tags) > 0 && t > tags[len(tags)-1] {
				tags = append(tags, t)
				added++
			}
		}
		if len(tags) >= want {
			return tags[:want-1], true, nil
		}
		if next == nil || added == 0 {
			return tags, false, nil
		}
		q = next
		if n > 0 {
			q.Set("n", strconv.Itoa(want-len(tags)))
		}
	}
	// Out of pages with more to come (fewer than want, or the loop would
	// have returned): the client goes on from the last tag it got, with
	// the Link its registry sends.
	return tags, len(tags) > 0, nil
}

// tags asks the upstream for one page of repo's tags and returns it with
// the query of the next page, nil when the answer links to none.
func (u *upstream) tags(ctx context.Context, repo string, q url.Values) ([]string, url.Values, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	what := "tags of " + repo
	resp, err := u.do(ctx, http.MethodGet, repo+"/tags/list", q, nil, pullScope(repo))
	if err != nil {
		return nil, nil, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, nil, &storage.Error{Err: storage.ErrNameUnknown, Detail: fmt.Sprintf("%s has no repository %s", u, repo)}
	default:
		return nil, nil, u.statusError(what, resp)
	}
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxUpstreamDoc)).Decode(&body); err != nil {
		return nil, nil, u.fail("reading "+what, err)
	}
	targets := nextTargets(resp.Header.Values("Link"))
	next := nextPage(resp.Request.URL, targets)
	if next == nil && len(body.Tags) > 0 && len(targets) > 0 {
		// A Link elsewhere than this list: only its existence is
		// trusted, and the next page is asked for here, from the last
		// tag.
		next = url.Values{"last": {body.Tags[len(body.Tags)-1]}}
	}
	return body.Tags, next, nil
}

// nextPage returns the query of the first of targets (those of rel="next"
// Links) that points at the same list on the same upstream as asked, nil
// when none does: the mirror never sends its credentials where an
// upstream's header says.
func nextPage(asked *url.URL, targets []string) url.Values {
	for _, target := range targets {
		u, err := asked.Parse(target)
		if err != nil || u.Scheme != asked.Scheme || u.Host != asked.Host || u.Path != asked.Path {
			continue
		}
		return u.Query()
	}
	return nil
}

// nextTargets returns the targets of the rel="next" links among links
// (`<url>; rel="next"`, several to a header, separated by commas).
func nextTargets(links []string) []string {
	var out []string
	for _, h := range links {
		for h != "" {
			open := strings.IndexByte(h, '<')
			end := strings.IndexByte(h, '>')
			if open < 0 || end < open {
				break
			}
			target, params := h[open+1:end], h[end+1:]
			rest := ""
			if c := strings.IndexByte(params, ','); c >= 0 {
				params, rest = params[:c], params[c+1:]
			}
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && strings.EqualFold(strings.Trim(v, `"`), "next") {
					out = append(out, target)
				}
			}
			h = rest
		}
	}
	return out
}
