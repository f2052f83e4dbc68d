package registry

import "net/http"

// getBase answers /v2/: the registry implements the API (and, through the
// Authorizer, whether the client is who it says it is).
func (a *api) getBase(w http.ResponseWriter, r *http.Request, req *request) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("{}"))
	}
	return nil
}
