package roundrobin

import "testing"

// TestHAProxyConfigListsEveryBackendInOrder: the text both callers wrote
// before it was shared, byte for byte.
func TestHAProxyConfigListsEveryBackendInOrder(t *testing.T) {
	got := HAProxyConfig("127.0.0.1:8000", 1024, []string{"127.0.0.1:5001", "127.0.0.1:5002"})
	want := `global
  maxconn 1024
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend registry
  bind 127.0.0.1:8000
  default_backend instances
backend instances
  balance roundrobin
  server instance0 127.0.0.1:5001
  server instance1 127.0.0.1:5002
`
	if got != want {
		t.Errorf("config:\n%s\nwant:\n%s", got, want)
	}
}
