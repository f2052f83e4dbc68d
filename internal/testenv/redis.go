package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server on loopback, started by StartRedis.
type Redis struct {
	Addr    string // 127.0.0.1:PORT
	Process *Process
}

// StartRedis starts redis-server (Debian's package) on a free loopback
// port, keeping nothing on disk, and stops it when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	port := FreePort(t)
	return startRedis(t, port, "--port", strconv.Itoa(port))
}

// StartRedisTLS is StartRedis speaking only TLS, with the server
// certificate and key in PEM files. With a non-empty clientCA, clients
// must present a certificate it signed.
func StartRedisTLS(t testing.TB, cert, key, clientCA string) *Redis {
	t.Helper()
	port := FreePort(t)
	args := []string{"--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-auth-clients", "no"}
	if clientCA != "" {
		args = append(args, "--tls-ca-cert-file", clientCA, "--tls-auth-clients", "yes")
	}
	return startRedis(t, port, args...)
}

func startRedis(t testing.TB, port int, args ...string) *Redis {
	t.Helper()
	bin := Tool(t, "redis-server")
	args = append(args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	p := StartProcess(t, bin, args, nil)
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), Process: p}
	WaitTCP(t, r.Addr, 30*time.Second)
	return r
}

// StartRedisSentinel starts a Redis sentinel on a free loopback port that
// watches master under the name masterName (a quorum of one), and returns
// its address. Clients ask it where the master is.
func StartRedisSentinel(t testing.TB, master *Redis, masterName string) string {
	t.Helper()
	bin := Tool(t, "redis-server")
	port := FreePort(t)
	host, mport, err := net.SplitHostPort(master.Addr)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// A sentinel rewrites its configuration file, so it gets its own.
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 1000\n",
		port, masterName, host, mport, masterName)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	StartProcess(t, bin, []string{conf, "--sentinel"}, nil)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	WaitTCP(t, addr, 30*time.Second)
	return addr
}

// StartRedisCluster starts a Redis cluster of three masters (no replicas)
// on free loopback ports, creates it with redis-cli --cluster create and
// waits until it serves every slot. It returns the nodes' addresses.
func StartRedisCluster(t testing.TB) []string {
	t.Helper()
	cli := Tool(t, "redis-cli")
	var addrs []string
	for _, port := range FreePorts(t, 3) {
		// Each process runs in its own directory, so each writes its own
		// nodes.conf.
		r := startRedis(t, port, "--port", strconv.Itoa(port), "--cluster-enabled", "yes")
		addrs = append(addrs, r.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if err := RunQuiet(cli, args...); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	host, port, _ := net.SplitHostPort(addrs[0])
	err := poll(30*time.Second, nil, func() error {
		out, err := exec.Command(cli, "-h", host, "-p", port, "cluster", "info").Output()
		if err != nil {
			return err
		}
		if !strings.Contains(string(out), "cluster_state:ok") {
			return fmt.Errorf("cluster not ready: %s", out)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: redis cluster: %v", err)
	}
	return addrs
}
