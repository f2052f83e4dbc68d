package mirror_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver/filesystem"
	"github.com/berth-registry/berth/storage/mirror"
)

// walkTags lists repo's tags through c from first, following the Link
// headers, and returns every tag with the number of pages it took.
func walkTags(t *testing.T, c client, first string) ([]string, int) {
	t.Helper()
	var all []string
	next := first
	pages := 0
	for next != "" {
		if pages++; pages > 200 {
			t.Fatalf("more than 200 pages from %s", first)
		}
		status, h, body := c.get(t, next)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", next, status, body)
		}
		var page struct{ Tags []string }
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("GET %s: %v", next, err)
		}
		all = append(all, page.Tags...)
		next = ""
		if l := h.Get("Link"); l != "" {
			target := l[strings.IndexByte(l, '<')+1 : strings.IndexByte(l, '>')]
			u, err := url.Parse(target)
			if err != nil {
				t.Fatalf("Link %q: %v", l, err)
			}
			next = u.RequestURI()
		}
	}
	return all, pages
}

// A Berth or Distribution 3.1 upstream (here each with tags.maxtags 5)
// serves at most maxtags tags a page whatever n asks, with a Link to the
// rest: the mirror's client gets every tag, in order, however it pages.
// Before the mirror read the upstream's Link, a page of n tags asked the
// upstream for n+1, got the upstream's cap and no more, and ended the list
// there.
func TestTagListFollowsTheUpstreamsPages(t *testing.T) {
	d, err := filesystem.New(filesystem.Params{RootDirectory: t.TempDir(), MaxThreads: 25})
	if err != nil {
		t.Fatal(err)
	}
	berth := httptest.NewServer(registry.New(storage.New(d, storage.Options{}, nil), registry.Options{TagsMax: 5}, nil))
	defer berth.Close()
	dist := testenv.StartDistribution(t, "", "", "tags:\n  maxtags: 5\n")
	for _, up := range []struct{ name, url string }{
		{"Berth", berth.URL},
		{"Distribution", "http://" + dist.Addr},
	} {
		t.Run(up.name, func(t *testing.T) {
			uc := client{base: up.url}
			var want []string
			for i := range 12 {
				tag := fmt.Sprintf("v%02d", i)
				uc.push(t, "capped/app", tag)
				want = append(want, tag)
			}
			mr := startMirror(t, "", mirror.Upstream{RemoteURL: up.url})
			for _, tc := range []struct {
				query     string
				wantPages int
			}{
				{"?n=5", 3},
				{"?n=3", 4},
				{"?n=4&last=v01", 3},
				{"?n=1000", 1},
				{"", 1},
			} {
				got, pages := walkTags(t, mr.client, "/v2/capped/app/tags/list"+tc.query)
				exp := want
				if q, _ := url.ParseQuery(strings.TrimPrefix(tc.query, "?")); q.Get("last") != "" {
					exp = want[slices.Index(want, q.Get("last"))+1:]
				}
				if !slices.Equal(got, exp) || pages != tc.wantPages {
					t.Errorf("%s: got %v in %d pages, want %v in %d", tc.query, got, pages, exp, tc.wantPages)
				}
			}
		})
	}
}

// An upstream that pages against the mirror: one tag a page, a Link to
// another host, a Link back to the same page. The mirror never follows a
// Link off its upstream's list (its credentials go there), spends at most
// a bounded number of upstream requests per page of its own, and still
// answers every tag once, in order.
func TestTagListFromAHostileUpstream(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		http.NotFound(w, r)
	}))
	defer other.Close()
	var tags []string
	for i := range 40 {
		tags = append(tags, fmt.Sprintf("t%02d", i))
	}
	var hits atomic.Int64
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		repo := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v2/"), "/tags/list")
		rest := tags
		if last := r.URL.Query().Get("last"); last != "" {
			i, found := slices.BinarySearch(tags, last)
			if found {
				i++
			}
			rest = tags[i:]
		}
		per := 10
		switch repo {
		case "drip/app":
			per = 1
		case "loop/app":
			rest = tags[:2]
		}
		page := rest[:min(per, len(rest))]
		if len(page) < len(rest) || repo == "loop/app" {
			last := page[len(page)-1]
			switch repo {
			case "cross/app":
				w.Header().Set("Link", fmt.Sprintf(`<%s/v2/cross/app/tags/list?last=%s>; rel="next"`, other.URL, last))
			case "loop/app":
				w.Header().Set("Link", `</v2/loop/app/tags/list>; rel="next"`)
			default:
				w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?n=%d&last=%s>; rel="next"`, repo, per, last))
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"name": repo, "tags": page})
	}))
	defer hostile.Close()
	mr := startMirror(t, "", mirror.Upstream{RemoteURL: hostile.URL})
	for _, tc := range []struct {
		repo, query string
		want        []string
		maxHits     int64 // upstream requests per page of the mirror's
	}{
		{"drip/app", "?n=20", tags, 16},
		{"drip/app", "", tags, 40},
		{"cross/app", "?n=25", tags, 4},
		{"loop/app", "?n=10", tags[:2], 2},
		{"loop/app", "", tags[:2], 2},
	} {
		t.Run(tc.repo+tc.query, func(t *testing.T) {
			hits.Store(0)
			got, pages := walkTags(t, mr.client, "/v2/"+tc.repo+"/tags/list"+tc.query)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if per := hits.Load() / int64(pages); per > tc.maxHits {
				t.Fatalf("%d upstream requests for %d pages", hits.Load(), pages)
			}
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("the mirror followed a Link to another host %d times", n)
			}
		})
	}
}
