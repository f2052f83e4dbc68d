package registry

import "net/http"

// getCatalog lists the repositories, a page at a time: ?n= (at most
// CatalogMaxEntries, which is also the default) and ?last=, with a Link
// header to the next page when there is one.
func (a *api) getCatalog(w http.ResponseWriter, r *http.Request, req *request) error {
	n, hasN, last, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	if !hasN || n > a.opts.CatalogMaxEntries {
		n = a.opts.CatalogMaxEntries
	}
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
