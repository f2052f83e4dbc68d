package registry

import (
	"net/http"
	"strconv"
	"strings"
)

// withoutEmptySuffixes returns r with the suffix ranges that select no
// byte taken out of its Range header: "-0", or any suffix of an empty
// blob. http.ServeContent answers those with a 206 whose Content-Range
// ends before it starts ("bytes 36-35/36"), where RFC 9110 calls such a
// range unsatisfiable. When no range is left, the header becomes one that
// starts at the blob's end, which ServeContent answers with 416, after
// If-Range as usual. r itself is not changed; the common request comes
// back as it is.
func withoutEmptySuffixes(r *http.Request, size int64) *http.Request {
	h := r.Header.Get("Range")
	specs, ok := strings.CutPrefix(h, "bytes=")
	if !ok || !strings.Contains(specs, "-") {
		return r
	}
	var kept []string
	dropped := false
	for spec := range strings.SplitSeq(specs, ",") {
		spec = strings.TrimSpace(spec)
		if n, isSuffix := strings.CutPrefix(spec, "-"); isSuffix {
			if v, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64); err == nil && v >= 0 && (v == 0 || size == 0) {
				dropped = true
				continue
			}
		}
		if spec != "" {
			kept = append(kept, spec)
		}
	}
	if !dropped {
		return r
	}
	r2 := *r
	r2.Header = r.Header.Clone()
	if len(kept) == 0 {
		r2.Header.Set("Range", "bytes="+strconv.FormatInt(size, 10)+"-")
	} else {
		r2.Header.Set("Range", "bytes="+strings.Join(kept, ","))
	}
	return &r2
}
