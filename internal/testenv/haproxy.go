package testenv

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/roundrobin"
)

// StartHAProxy starts haproxy (Debian's package) on a free loopback port
// in HTTP mode, balancing each request round-robin over backends
// (host:port), and returns its address. It is stopped when the test ends.
func StartHAProxy(t testing.TB, backends ...string) string {
	t.Helper()
	bin := Tool(t, "haproxy")
	addr := FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(roundrobin.HAProxyConfig(addr, 1024, backends)), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// -db: stay in the foreground, so the process is the one stopped.
	StartProcess(t, bin, []string{"-db", "-f", cfg}, nil)
	WaitTCP(t, addr, 30*time.Second)
	return addr
}
