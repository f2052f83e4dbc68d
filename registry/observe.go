package registry

import (
	"net/http"
	"time"
)

// RequestInfo describes one served request, for Options.Observe.
type RequestInfo struct {
	Method string
	// Route is the route's pattern ("/v2/<name>/blobs/<digest>"), "" when
	// the path is no part of the API.
	Route string
	// Handler is CNCF Distribution's name for the route ("base",
	// "catalog", "tags", "manifest", "blob", "blob_upload",
	// "blob_upload_chunk", plus "referrers"), "" when none matched. Metrics
	// label requests with it so Distribution's dashboards keep working.
	Handler    string
	Repository string
	User       string
	RequestID  string
	Status     int
	BytesIn    int64 // request body bytes read
	BytesOut   int64 // response body bytes written
	Duration   time.Duration
	// UploadStarted is when the upload this request completed began; zero
	// unless the request committed a chunked upload.
	UploadStarted time.Time
}

// Observer hears of every request: it is called as the request arrives
// and may return a request to serve instead of r (one whose context
// carries a trace span), or nil to keep r; the function it returns is
// called once the request is served. Metrics and tracing hook in here.
type Observer func(r *http.Request) (*http.Request, func(RequestInfo))

// Observers combines several observers, called in order as a request
// arrives and in reverse order when it is served.
func Observers(obs ...Observer) Observer {
	return func(r *http.Request) (*http.Request, func(RequestInfo)) {
		var ends []func(RequestInfo)
		for _, o := range obs {
			if o == nil {
				continue
			}
			r2, end := o(r)
			if r2 != nil {
				r = r2
			}
			if end != nil {
				ends = append(ends, end)
			}
		}
		return r, func(info RequestInfo) {
			for i := len(ends) - 1; i >= 0; i-- {
				ends[i](info)
			}
		}
	}
}

// handlerNames are Distribution's route names by path shape.
var handlerNames = map[kind]string{
	kindBase:      "base",
	kindCatalog:   "catalog",
	kindTags:      "tags",
	kindManifest:  "manifest",
	kindBlob:      "blob",
	kindUploads:   "blob_upload",
	kindUpload:    "blob_upload_chunk",
	kindReferrers: "referrers",
}

// codeUnavailable is Distribution's code for a registry whose health
// checks fail; it is no part of the OCI table, as only /v2/ sends it.
const codeUnavailable Code = "UNAVAILABLE"

// unhealthy answers /v2/ while a health check fails, so a load balancer
// probing it takes the instance out.
func unhealthy(err error) *Error {
	return &Error{
		Code:    codeUnavailable,
		Message: "service unavailable",
		Detail:  "health check failed: please see /debug/health",
		Status:  http.StatusServiceUnavailable,
		Err:     err,
	}
}

// noteUpload records, for the request's observer, when the upload that w's
// request completed began.
func noteUpload(w http.ResponseWriter, started time.Time) {
	if rw, ok := w.(*responseWriter); ok {
		rw.uploadStarted = started
	}
}
