package registry

import "net/http"

// catalogPage is how many repositories a catalog request without n gets
// (at most CatalogMaxEntries), as from Distribution.
const catalogPage = 100

// getCatalog lists the repositories, a page at a time: ?n= (at most
// CatalogMaxEntries) and ?last=, with a Link header to the next page when
// there is one. An n above CatalogMaxEntries is served as
// CatalogMaxEntries with a Link to the rest, as Distribution now does for
// tags; its catalog refuses such an n with 400, which only breaks clients.
func (a *api) getCatalog(w http.ResponseWriter, r *http.Request, req *request) error {
	n, hasN, last, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	if !hasN {
		n = catalogPage
	}
	n = min(n, a.opts.CatalogMaxEntries)
	var repos []string
	more := false
	if n > 0 {
		if repos, err = a.reg.Catalog(r.Context(), n+1, last); err != nil {
			return err
		}
		if len(repos) > n {
			repos, more = repos[:n], true
		}
	}
	if more {
		w.Header().Set("Link", a.link("/v2/_catalog", n, repos[len(repos)-1]))
	}
	if repos == nil {
		repos = []string{}
	}
	return writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}
