package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartHAProxy starts haproxy (Debian's package) on a free loopback port
// in HTTP mode, balancing each request round-robin over backends
// (host:port), and returns its address. It is stopped when the test ends.
func StartHAProxy(t testing.TB, backends ...string) string {
	t.Helper()
	bin := Tool(t, "haproxy")
	addr := FreeAddr(t)
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn 1024
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
`, addr)
	for i, be := range backends {
		fmt.Fprintf(&b, "  server instance%d %s\n", i, be)
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// -db: stay in the foreground, so the process is the one stopped.
	StartProcess(t, bin, []string{"-db", "-f", cfg}, nil)
	WaitTCP(t, addr, 30*time.Second)
	return addr
}
