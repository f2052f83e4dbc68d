// Package silly is Distribution's "silly" access controller, for
// development only: any request that carries an Authorization header, of
// any value, is let through; one without gets a Bearer challenge naming
// the realm and service. It checks nothing and must never guard a
// registry anyone else can reach.
package silly

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/registry"
)

// Controller lets through every request with an Authorization header.
type Controller struct {
	realm, service string
}

// New returns the controller; realm and service go into its challenge.
func New(realm, service string) *Controller {
	return &Controller{realm: realm, service: service}
}

// Authorize implements registry.Authorizer.
func (c *Controller) Authorize(w http.ResponseWriter, r *http.Request, access []registry.Access) (*http.Request, error) {
	if r.Header.Get("Authorization") != "" {
		return r, nil
	}
	challenge := fmt.Sprintf("Bearer realm=%q,service=%q", c.realm, c.service)
	if scope := scopes(access); scope != "" {
		challenge += fmt.Sprintf(",scope=%q", scope)
	}
	return nil, auth.Unauthorized(w, challenge, "authentication required", nil)
}

// scopes writes access as the token spec's space-separated scope list.
func scopes(access []registry.Access) string {
	parts := make([]string, 0, len(access))
	for _, a := range access {
		parts = append(parts, a.Type+":"+a.Name+":"+strings.Join(a.Actions, ","))
	}
	return strings.Join(parts, " ")
}
