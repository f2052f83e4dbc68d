package registry

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestTagsListPaginates(t *testing.T) {
	s := newServer(t, nil)
	payload := s.imageManifest("repo", image{})
	for _, tag := range []string{"c", "a", "B", "b", "d"} {
		s.do("PUT", "/v2/repo/manifests/"+tag, payload, "Content-Type", mtManifest).expect(t, http.StatusCreated, "")
	}
	tests := []struct {
		query string
		tags  []string
		link  string
	}{
		{"", []string{"B", "a", "b", "c", "d"}, ""},
		{"?n=2", []string{"B", "a"}, `</v2/repo/tags/list?last=a&n=2>; rel="next"`},
		{"?n=2&last=a", []string{"b", "c"}, `</v2/repo/tags/list?last=c&n=2>; rel="next"`},
		{"?n=2&last=c", []string{"d"}, ""},
		{"?n=5", []string{"B", "a", "b", "c", "d"}, ""},
		{"?last=b", []string{"c", "d"}, ""},
		{"?n=0", []string{}, ""},
		{"?n=99999999999", []string{"B", "a", "b", "c", "d"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res := s.do("GET", "/v2/repo/tags/list"+tt.query, nil)
			res.expectHeader(t, "Link", tt.link)
			if got := tagsOf(t, res); !slices.Equal(got, tt.tags) {
				t.Fatalf("body %s, want tags %q", res.body, tt.tags)
			}
		})
	}
}

// tagsOf checks a tag list response for repo and returns its tags.
func tagsOf(t *testing.T, res result) []string {
	t.Helper()
	res.expect(t, http.StatusOK, "")
	res.expectHeader(t, "Content-Type", "application/json")
	var body struct {
		Name string    `json:"name"`
		Tags *[]string `json:"tags"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Name != "repo" || body.Tags == nil {
		t.Fatalf("body %s, want repo's tags", res.body)
	}
	return *body.Tags
}

// TestTagsMaxCapsN applies tags.maxtags as Distribution 3.1 does: an n
// above it is served as maxtags with a Link to the rest, not refused; a
// list without n is not paginated.
func TestTagsMaxCapsN(t *testing.T) {
	s := newServer(t, &setup{opts: Options{TagsMax: 2}})
	payload := s.imageManifest("repo", image{})
	for _, tag := range []string{"c", "a", "B", "b", "d"} {
		s.do("PUT", "/v2/repo/manifests/"+tag, payload, "Content-Type", mtManifest).expect(t, http.StatusCreated, "")
	}
	tests := []struct {
		query string
		tags  []string
		link  string
	}{
		{"", []string{"B", "a", "b", "c", "d"}, ""},
		{"?n=3", []string{"B", "a"}, `</v2/repo/tags/list?last=a&n=2>; rel="next"`},
		{"?n=99999999999", []string{"B", "a"}, `</v2/repo/tags/list?last=a&n=2>; rel="next"`},
		{"?n=3&last=a", []string{"b", "c"}, `</v2/repo/tags/list?last=c&n=2>; rel="next"`},
		{"?n=2&last=c", []string{"d"}, ""},
		{"?n=1", []string{"B"}, `</v2/repo/tags/list?last=B&n=1>; rel="next"`},
		{"?n=0", []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res := s.do("GET", "/v2/repo/tags/list"+tt.query, nil)
			res.expectHeader(t, "Link", tt.link)
			if got := tagsOf(t, res); !slices.Equal(got, tt.tags) {
				t.Fatalf("body %s, want tags %q", res.body, tt.tags)
			}
		})
	}

	// Following the links from an oversized n gives every tag once.
	var all []string
	next := "/v2/repo/tags/list?n=1000"
	for range 10 {
		res := s.do("GET", next, nil)
		page := tagsOf(t, res)
		if len(page) > 2 {
			t.Fatalf("page of %d tags, over maxtags 2", len(page))
		}
		all = append(all, page...)
		link := res.header.Get("Link")
		if link == "" {
			break
		}
		next = link[1:strings.Index(link, ">")]
	}
	if !slices.Equal(all, []string{"B", "a", "b", "c", "d"}) {
		t.Fatalf("tags through the links %q", all)
	}
}

func TestTagsListErrors(t *testing.T) {
	s := newServer(t, nil)
	s.pushImage("repo", "v1", image{})
	s.do("GET", "/v2/repo/tags/list?n=-1", nil).expect(t, http.StatusBadRequest, CodePaginationInvalid)
	s.do("GET", "/v2/repo/tags/list?n=ten", nil).expect(t, http.StatusBadRequest, CodePaginationInvalid)
	s.do("GET", "/v2/nosuchrepo/tags/list", nil).expect(t, http.StatusNotFound, CodeNameUnknown)
	s.do("GET", "/v2/nosuchrepo/tags/list?n=0", nil).expect(t, http.StatusNotFound, CodeNameUnknown)
}
