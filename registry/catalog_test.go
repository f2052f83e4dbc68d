package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
)

func TestCatalogPaginates(t *testing.T) {
	s := newServer(t, &setup{opts: Options{CatalogMaxEntries: 3}})
	for _, name := range []string{"b", "a/x", "a", "c/d/e", "d"} {
		s.pushImage(name, "v1", image{})
	}
	tests := []struct {
		query string
		repos []string
		link  string
	}{
		{"", []string{"a", "a/x", "b"}, `</v2/_catalog?last=b&n=3>; rel="next"`},
		{"?n=2", []string{"a", "a/x"}, `</v2/_catalog?last=a%2Fx&n=2>; rel="next"`},
		{"?n=2&last=a%2Fx", []string{"b", "c/d/e"}, `</v2/_catalog?last=c%2Fd%2Fe&n=2>; rel="next"`},
		{"?n=2&last=c%2Fd%2Fe", []string{"d"}, ""},
		{"?n=100&last=b", []string{"c/d/e", "d"}, ""},
		{"?n=100", []string{"a", "a/x", "b"}, `</v2/_catalog?last=b&n=3>; rel="next"`},
		{"?n=0", []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res := s.do("GET", "/v2/_catalog"+tt.query, nil)
			res.expect(t, http.StatusOK, "")
			res.expectHeader(t, "Link", tt.link)
			var body struct {
				Repositories *[]string `json:"repositories"`
			}
			if err := json.Unmarshal(res.body, &body); err != nil {
				t.Fatal(err)
			}
			if body.Repositories == nil || !slices.Equal(*body.Repositories, tt.repos) {
				t.Fatalf("body %s, want %q", res.body, tt.repos)
			}
		})
	}
	s.do("GET", "/v2/_catalog?n=x", nil).expect(t, http.StatusBadRequest, CodePaginationInvalid)
}

func TestCatalogOfEmptyRegistry(t *testing.T) {
	s := newServer(t, nil)
	res := s.do("GET", "/v2/_catalog", nil)
	res.expect(t, http.StatusOK, "")
	if string(res.body) != `{"repositories":[]}` {
		t.Fatalf("body %s", res.body)
	}
}

// TestCatalogDefaultPage is Distribution's page without n: 100
// repositories, or catalog.maxentries if lower.
func TestCatalogDefaultPage(t *testing.T) {
	s := newServer(t, nil)
	for i := range 101 {
		s.startUpload(fmt.Sprintf("r%03d", i))
	}
	tests := []struct {
		query string
		count int
		link  string
	}{
		{"", 100, `</v2/_catalog?last=r099&n=100>; rel="next"`},
		{"?n=101", 101, ""},
		{"?last=r099", 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res := s.do("GET", "/v2/_catalog"+tt.query, nil)
			res.expect(t, http.StatusOK, "")
			res.expectHeader(t, "Link", tt.link)
			var body struct {
				Repositories []string `json:"repositories"`
			}
			if err := json.Unmarshal(res.body, &body); err != nil {
				t.Fatal(err)
			}
			if len(body.Repositories) != tt.count {
				t.Fatalf("%d repositories, want %d", len(body.Repositories), tt.count)
			}
		})
	}
}
