// Package auth holds Berth's access controllers: htpasswd (basic auth) and
// token (the Docker registry token spec). A controller answers "may this
// request do this?" for the registry package; it knows nothing of storage.
package auth

import (
	"net/http"
	"strconv"
	"time"

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

// TooManyRequests is the 429 sent to a client that must wait before it
// tries again; Retry-After says how long, in whole seconds (at least one).
func TooManyRequests(w http.ResponseWriter, wait time.Duration, message string) error {
	secs := int64((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	return &registry.Error{Code: registry.CodeTooManyRequests, Message: message}
}
