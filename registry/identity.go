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

// pullableKey is the context key of what the caller may pull.
type pullableKey struct{}

// Pullable is every repository an authenticated caller may pull, whatever
// its request asked for. A mount without from takes blobs only from there.
// The zero value is nothing.
type Pullable struct {
	// All is every repository: an htpasswd user, who may do everything.
	All bool
	// Repositories are the ones named with pull (or *) in a token.
	Repositories []string
}

// WithPullable returns ctx carrying what the caller may pull. An
// Authorizer that does not call it grants a mount without from nothing.
func WithPullable(ctx context.Context, p Pullable) context.Context {
	return context.WithValue(ctx, pullableKey{}, p)
}

func pullableFrom(ctx context.Context) Pullable {
	p, _ := ctx.Value(pullableKey{}).(Pullable)
	return p
}
