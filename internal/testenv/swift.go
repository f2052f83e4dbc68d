package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SwiftPackages are the Debian packages a real single-node Swift needs;
// CI installs them, and the tests say so when one is missing.
const SwiftPackages = "swift swift-proxy swift-object swift-container swift-account memcached"

// Swift is a single-node OpenStack Swift on loopback with tempauth,
// started by StartSwift.
type Swift struct {
	AuthURL  string // http://127.0.0.1:PORT/auth/v1.0
	User     string // account:user
	Key      string
	ProxyURL string // http://127.0.0.1:PORT
}

// swiftServers are the daemons of one node, besides the proxy.
var swiftServers = []string{"account", "container", "object"}

// StartSwift builds rings of one device and one replica in a temporary
// directory, starts memcached, the account, container and object servers
// and a proxy whose pipeline has what a registry driver uses (tempauth,
// tempurl, bulk delete, server-side copy, large objects), waits for the
// proxy's health check, and stops everything when the test ends. The
// cluster hash comes from the packaged /etc/swift/swift.conf.
func StartSwift(t testing.TB) *Swift {
	t.Helper()
	bins := map[string]string{}
	for _, name := range []string{"swift-ring-builder", "swift-proxy-server", "swift-account-server",
		"swift-container-server", "swift-object-server", "memcached"} {
		p, err := exec.LookPath(name)
		if err != nil {
			Missing(t, name, "install it with: apt-get install -y --no-install-recommends "+SwiftPackages)
			return nil
		}
		bins[name] = p
	}
	if _, err := os.Stat("/etc/swift/swift.conf"); err != nil {
		Missing(t, "/etc/swift/swift.conf", "it comes with the swift package")
		return nil
	}

	dir := t.TempDir()
	etc, dev := filepath.Join(dir, "etc"), filepath.Join(dir, "node")
	for _, d := range []string{etc, filepath.Join(dev, "d1")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	free := FreePorts(t, 2+len(swiftServers))
	ports := map[string]int{"proxy": free[0], "memcached": free[1]}
	for i, s := range swiftServers {
		ports[s] = free[2+i]
	}

	// One ring per server kind: 2^8 partitions, one replica, one device.
	for _, s := range swiftServers {
		builder := s + ".builder"
		for _, args := range [][]string{
			{builder, "create", "8", "1", "1"},
			{builder, "add", fmt.Sprintf("r1z1-127.0.0.1:%d/d1", ports[s]), "100"},
			{builder, "rebalance"},
		} {
			cmd := exec.Command(bins["swift-ring-builder"], args...)
			cmd.Dir = etc
			// rebalance exits 1 with a warning on a one-device ring.
			if out, err := cmd.CombinedOutput(); err != nil && args[1] != "rebalance" {
				t.Fatalf("testenv: swift-ring-builder %v: %v\n%s", args, err, out)
			}
		}
	}

	header := func(port int) string {
		return fmt.Sprintf(`[DEFAULT]
devices = %s
mount_check = false
bind_ip = 127.0.0.1
bind_port = %d
workers = 0
user = %s
swift_dir = %s
log_name = berth-test
log_address = %s
`, dev, port, swiftUser(), etc, filepath.Join(dir, "no-syslog"))
	}
	for _, s := range swiftServers {
		conf := header(ports[s]) + fmt.Sprintf("\n[pipeline:main]\npipeline = %[1]s-server\n\n[app:%[1]s-server]\nuse = egg:swift#%[1]s\n", s)
		writeSwiftConf(t, filepath.Join(etc, s+"-server.conf"), conf)
	}
	filters := []string{"catch_errors", "gatekeeper", "healthcheck", "cache", "listing_formats", "bulk",
		"tempurl", "tempauth", "copy", "slo", "dlo"}
	var proxy strings.Builder
	proxy.WriteString(header(ports["proxy"]))
	fmt.Fprintf(&proxy, "\n[pipeline:main]\npipeline = %s proxy-server\n", strings.Join(filters, " "))
	proxy.WriteString("\n[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n")
	for _, f := range filters {
		egg := f
		if f == "cache" {
			egg = "memcache"
		}
		fmt.Fprintf(&proxy, "\n[filter:%s]\nuse = egg:swift#%s\n", f, egg)
		switch f {
		case "cache":
			fmt.Fprintf(&proxy, "memcache_servers = 127.0.0.1:%d\n", ports["memcached"])
		case "tempauth":
			// .admin lets the test user set the account's temp URL key.
			proxy.WriteString("user_test_tester = testing .admin\n")
		}
	}
	writeSwiftConf(t, filepath.Join(etc, "proxy-server.conf"), proxy.String())

	StartProcess(t, bins["memcached"], []string{"-u", swiftUser(), "-l", "127.0.0.1",
		"-p", strconv.Itoa(ports["memcached"]), "-U", "0", "-m", "64"}, nil)
	for _, s := range swiftServers {
		StartProcess(t, bins["swift-"+s+"-server"], []string{filepath.Join(etc, s+"-server.conf")}, nil)
	}
	p := StartProcess(t, bins["swift-proxy-server"], []string{filepath.Join(etc, "proxy-server.conf")}, nil)
	base := fmt.Sprintf("http://127.0.0.1:%d", ports["proxy"])
	p.WaitHTTP(t, base+"/healthcheck", 60*time.Second)
	for _, s := range swiftServers {
		WaitTCP(t, fmt.Sprintf("127.0.0.1:%d", ports[s]), 30*time.Second)
	}
	return &Swift{AuthURL: base + "/auth/v1.0", User: "test:tester", Key: "testing", ProxyURL: base}
}

func swiftUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

func writeSwiftConf(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
