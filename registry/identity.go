package registry

import "context"

// userKey is the context key of the authenticated user's name.
type userKey struct{}

// WithUser returns ctx carrying the name of the user a request was
// authenticated as. An Authorizer calls it on the request it returns, so
// the request log line and the handlers know who acted.
func WithUser(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, userKey{}, name)
}

// UserFromContext returns the name WithUser put in ctx, or "" for an
// anonymous request.
func UserFromContext(ctx context.Context) string {
	name, _ := ctx.Value(userKey{}).(string)
	return name
}
