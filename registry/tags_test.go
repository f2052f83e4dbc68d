package registry

import (
	"encoding/json"
	"net/http"
	"slices"
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
			res.expect(t, http.StatusOK, "")
			res.expectHeader(t, "Content-Type", "application/json")
			res.expectHeader(t, "Link", tt.link)
			var body struct {
				Name string    `json:"name"`
				Tags *[]string `json:"tags"`
			}
			if err := json.Unmarshal(res.body, &body); err != nil {
				t.Fatal(err)
			}
			if body.Name != "repo" || body.Tags == nil || !slices.Equal(*body.Tags, tt.tags) {
				t.Fatalf("body %s, want tags %q", res.body, tt.tags)
			}
		})
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
