// Package auth holds Berth's access controllers: htpasswd (basic auth) and
// token (the Docker registry token spec). A controller answers "may this
// request do this?" for the registry package; it knows nothing of storage.
package auth

import (
	"net/http"

	"github.com/berth-registry/berth/registry"
)

// Controller decides what a request may do. Its Authorize method has the
// shape of registry.Authorizer, so a controller plugs into
// registry.Options.Authorize as c.Authorize.
type Controller interface {
	Authorize(w http.ResponseWriter, r *http.Request, access []registry.Access) (*http.Request, error)
}

// Unauthorized is the 401 sent when a request carries no usable
// credentials; challenge is the WWW-Authenticate value set on w.
func Unauthorized(w http.ResponseWriter, challenge, message string, cause error) error {
	w.Header().Set("WWW-Authenticate", challenge)
	return &registry.Error{Code: registry.CodeUnauthorized, Message: message, Err: cause}
}
