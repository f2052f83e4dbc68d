package registry

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
)

// getTags lists a repository's tags in lexical order, a page at a time
// with ?n= and ?last=, with a Link header to the next page when there is
// one. An n above TagsMax is served as TagsMax, as Distribution 3.1 does
// (it refused such an n with 400 before, which broke clients); a request
// without n gets every tag, as from Distribution.
func (a *api) getTags(w http.ResponseWriter, r *http.Request, req *request) error {
	n, hasN, last, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	if hasN && a.opts.TagsMax > 0 {
		n = min(n, a.opts.TagsMax)
	}
	ctx := r.Context()
	var tags []string
	more := false
	switch {
	case hasN && n == 0:
		// Nothing to list, but an unknown repository is still 404.
		if _, _, err := req.repo.Tags(ctx, 1, last); err != nil {
			return err
		}
	case hasN:
		// The storage tells whether more follow: asking it for n+1 tags
		// instead cost a page of 1 000 a second listing on S3, whose
		// listings stop at 1 000 keys.
		if tags, more, err = req.repo.Tags(ctx, n, last); err != nil {
			return err
		}
	default:
		// Every tag, unless a mirror's upstream has more than it
		// gathers for one answer: then the rest is a Link away.
		if tags, more, err = req.repo.Tags(ctx, 0, last); err != nil {
			return err
		}
		n = len(tags)
	}
	if more && len(tags) > 0 {
		w.Header().Set("Link", a.link("/v2/"+req.name+"/tags/list", n, tags[len(tags)-1]))
	}
	if tags == nil {
		tags = []string{}
	}
	return writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{req.name, tags})
}

// parsePage reads the n and last parameters of a listing. n must be a
// non-negative integer when present.
func parsePage(q url.Values) (n int, hasN bool, last string, err error) {
	last = q.Get("last")
	s := q.Get("n")
	if s == "" {
		return 0, false, last, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, false, "", &Error{Code: CodePaginationInvalid, Detail: map[string]string{"n": truncate(s, 32)}}
	}
	// Asking for more than can exist is asking for everything; the bound
	// keeps n+1 from overflowing.
	return int(min(v, math.MaxInt32)), true, last, nil
}

// writeJSON sends v with status 200.
func writeJSON(w http.ResponseWriter, contentType string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}
