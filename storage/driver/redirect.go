package driver

// WithRedirector returns d wrapped (see Wrap) with rd making its redirect
// URLs in place of the driver's own: storage middleware (a CDN, a fixed
// base URL) that sends clients elsewhere for the same paths. rd may call
// the Redirector that RedirectorOf(d) returned before, to build on it.
func WithRedirector(d Driver, rd Redirector) Driver {
	w, ok := Wrap(d).(*wrapped)
	if !ok {
		return d // not reached: Wrap returns a *wrapped
	}
	out := *w
	out.rd = rd
	return &out
}

// RedirectorOf returns what makes d's redirect URLs: the one
// WithRedirector set, else the driver's own, else nil when d cannot make
// any.
func RedirectorOf(d Driver) Redirector {
	if w, ok := d.(*wrapped); ok && w.rd != nil {
		return w.rd
	}
	// The driver's own, below the wrappers, which all claim to be one.
	for {
		u, ok := d.(interface{ Unwrap() Driver })
		if !ok {
			break
		}
		d = u.Unwrap()
	}
	rd, _ := d.(Redirector)
	return rd
}

// Find returns the first of d and the drivers it wraps (through Wrap,
// Instrument and any wrapper with an Unwrap() Driver method) that
// implements T: a capability a wrapper does not pass on, such as the
// object key of a path that a CDN in front of S3 needs.
func Find[T any](d Driver) (T, bool) {
	for d != nil {
		if t, ok := d.(T); ok {
			return t, true
		}
		u, ok := d.(interface{ Unwrap() Driver })
		if !ok {
			break
		}
		d = u.Unwrap()
	}
	var zero T
	return zero, false
}
