package registry

import (
	"net/http"
	"net/netip"
	"strings"
)

// fromClient returns r as the handlers are to see it when proxies are
// trusted: with RemoteAddr the client a trusted proxy names (and peer the
// proxy's address), or, from anyone else, without the X-Forwarded-Host
// and X-Forwarded-Proto headers, which would otherwise choose the URLs in
// its Location headers and in the events' target.url. With no proxies
// configured r is left as it is: those two headers are then believed from
// anyone, as Distribution does, so a proxy setup relying on them keeps
// working.
func (a *api) fromClient(r *http.Request) (_ *http.Request, peer string) {
	trusted := a.opts.TrustedProxies
	if len(trusted) == 0 {
		return r, ""
	}
	if client, ok := forwardedClient(r, trusted); ok {
		r2 := *r
		r2.RemoteAddr = client
		return &r2, r.RemoteAddr
	}
	h := r.Header
	if h.Get("X-Forwarded-Host") == "" && h.Get("X-Forwarded-Proto") == "" {
		return r, ""
	}
	if p, err := parseHostAddr(r.RemoteAddr); err == nil && inPrefixes(trusted, p) {
		return r, ""
	}
	r2 := *r
	r2.Header = h.Clone()
	r2.Header.Del("X-Forwarded-Host")
	r2.Header.Del("X-Forwarded-Proto")
	return &r2, ""
}

// forwardedClient resolves the address of the client behind trusted
// proxies. Only a peer in trusted is believed about who sent the request:
// anyone else could write any X-Forwarded-For and be logged, evented and
// rate-limited as someone else. From a trusted peer the proxies' headers
// are read from the nearest hop back (each proxy appends the address it
// saw), and the first hop that is not itself a trusted proxy is the
// client; a client cannot push its way past that by sending its own
// header, whose entries sit to the left of what the proxies appended.
// X-Forwarded-For is read first, as Distribution does, then Forwarded
// (RFC 7239), then X-Real-Ip. ok is false when r is to be taken as it is.
func forwardedClient(r *http.Request, trusted []netip.Prefix) (client string, ok bool) {
	peer, err := parseHostAddr(r.RemoteAddr)
	if err != nil || !inPrefixes(trusted, peer) {
		return "", false
	}
	h := r.Header
	if v := h.Values("X-Forwarded-For"); len(v) > 0 {
		return walkHops(splitList(v), peer, trusted, func(s string) string { return s }), true
	}
	if v := h.Values("Forwarded"); len(v) > 0 {
		return walkHops(splitList(v), peer, trusted, forwardedFor), true
	}
	if v := strings.TrimSpace(h.Get("X-Real-Ip")); v != "" {
		if a, err := parseHostAddr(v); err == nil {
			return a.String(), true
		}
	}
	return "", false
}

// walkHops goes from the last hop to the first and returns the first
// that is not a trusted proxy; all trusted gives the first. A hop that
// does not parse ends the walk at the last address known good.
func walkHops(hops []string, peer netip.Addr, trusted []netip.Prefix, addrOf func(string) string) string {
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHostAddr(addrOf(hops[i]))
		if err != nil {
			break
		}
		client = a
		if !inPrefixes(trusted, a) {
			break
		}
	}
	return client.String()
}

// splitList splits the values of a comma-separated header, every line of
// it, in order.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			out = append(out, strings.TrimSpace(item))
		}
	}
	return out
}

// forwardedFor is the for= parameter of one Forwarded element
// (`for=192.0.2.60;proto=http`, `for="[2001:db8::1]:4711"`), or "".
func forwardedFor(elem string) string {
	for pair := range strings.SplitSeq(elem, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
		if strings.EqualFold(k, "for") {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// parseHostAddr reads an IP address with or without a port, as
// "192.0.2.1", "192.0.2.1:80", "2001:db8::1" or "[2001:db8::1]:80".
// IPv4-mapped IPv6 addresses are read as IPv4, so one prefix covers both.
func parseHostAddr(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, err
	}
	return a.Unmap().WithZone(""), nil
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
