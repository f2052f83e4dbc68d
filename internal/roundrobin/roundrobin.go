// Package roundrobin holds the configuration of the load balancer that
// Berth's multi-instance tests and the benchmark harness put in front of
// several registry instances: haproxy in HTTP mode, each request to the
// next instance. It writes text only; starting and stopping the process
// is the caller's (a test fails, the harness returns an error).
package roundrobin

import (
	"fmt"
	"strings"
)

// HAProxyConfig is a haproxy configuration that listens on bind
// (host:port) and balances each HTTP request round-robin over backends
// (host:port), with at most maxConn connections at once. Timeouts leave
// room for a large blob streamed through it.
func HAProxyConfig(bind string, maxConn int, backends []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn %d
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend registry
  bind %s
  default_backend instances
backend instances
  balance roundrobin
`, maxConn, bind)
	for i, be := range backends {
		fmt.Fprintf(&b, "  server instance%d %s\n", i, be)
	}
	return b.String()
}
