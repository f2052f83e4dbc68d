package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// withRedis turns a registry config into one whose blob descriptor cache
// is the Redis at addr, as a deployment of several instances runs: the
// same keys for Berth and Distribution.
func withRedis(cfg, addr string) string {
	cfg = strings.Replace(cfg, "    blobdescriptor: inmemory\n", "    blobdescriptor: redis\n", 1)
	return cfg + fmt.Sprintf("redis:\n  addrs: [%s]\n  dialtimeout: 2s\n", addr)
}

// redisSkip says why a scenario that needs redis-server cannot run.
func redisSkip(*harness) string {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "redis-server not installed (apt-get install -y redis-server)"
	}
	return ""
}

// startRedis starts a redis-server for one server of a scenario, on a
// free loopback port, keeping nothing on disk, with its log in dir. stop
// ends it.
func startRedis(ctx context.Context, dir string) (addr string, stop func(), err error) {
	addr, err = freeAddr()
	if err != nil {
		return "", nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Dir = dir
	p, err := startProc("redis-server", cmd, filepath.Join(dir, "redis.log"))
	if err != nil {
		return "", nil, err
	}
	done, stop := p.done, p.stop
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr, stop, nil
		}
		select {
		case <-done:
			stop()
			return "", nil, fmt.Errorf("redis-server exited: %s", tail(filepath.Join(dir, "redis.log")))
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server not accepting connections on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
