package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"
)

// TestServeRefusesAnUnreachableRedis: a shared cache that does not answer
// at start stops the server with the key and the address, rather than
// leaving this instance on a weaker guarantee than its peers.
func TestServeRefusesAnUnreachableRedis(t *testing.T) {
	dir := t.TempDir()
	closed := freeAddr(t)
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: redis
redis:
  addrs: [%s]
  dialtimeout: 200ms
http:
  addr: %s
`, filepath.Join(dir, "root"), closed, freeAddr(t)))
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", cfg}, io.Discard, &stderr, nil)
	if code != 1 || !strings.Contains(stderr.String(), "redis") || !strings.Contains(stderr.String(), closed) {
		t.Fatalf("exit %d, stderr:\n%s\nwant 1 and an error naming redis and %s", code, stderr.String(), closed)
	}
}

// TestServeUsesTheRedisSectionsKeys serves with a Redis that asks for a
// user, a password and TLS with client certificates, in database 3: the
// push's descriptors land there, under Distribution's key names, which
// only happens when every one of those keys took effect.
func TestServeUsesTheRedisSectionsKeys(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "redis ca")
	srvCert, srvKey := ca.issue(2, true)
	cliCert, cliKey := ca.issue(3, false)
	files := map[string][]byte{"ca.pem": ca.pem, "srv.pem": srvCert, "srv.key": srvKey, "cli.pem": cliCert, "cli.key": cliKey}
	for name, b := range files {
		write(t, filepath.Join(dir, name), b)
	}
	srv := testenv.StartRedisTLS(t, filepath.Join(dir, "srv.pem"), filepath.Join(dir, "srv.key"), filepath.Join(dir, "ca.pem"))
	tlsCfg, err := redisOptions(redisTLSSection(dir))
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr, TLSConfig: tlsCfg.TLSConfig})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "berth", "on", ">s3cret", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "default", "off").Err(); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: redis
redis:
  addrs: [%s]
  username: berth
  password: s3cret
  db: 3
  dialtimeout: 2s
  tls:
    certificate: %s
    key: %s
    rootcas: [%s]
http:
  addr: %s
`, filepath.Join(dir, "root"), srv.Addr, filepath.Join(dir, "cli.pem"), filepath.Join(dir, "cli.key"), filepath.Join(dir, "ca.pem"), addr))
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() { done <- run(runCtx, []string{"serve", cfg}, io.Discard, &stderr, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUp(t, "http://"+addr+"/v2/")

	blob := []byte("a blob whose descriptor goes to redis")
	d := digest.FromBytes(blob)
	res, err := http.Post("http://"+addr+"/v2/app/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d", res.StatusCode)
	}
	head, err := http.Head("http://" + addr + "/v2/app/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()

	user := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "berth", Password: "s3cret", DB: 3, TLSConfig: tlsCfg.TLSConfig})
	defer user.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := user.Exists(ctx, "blobs::"+d.String(), "repository::app::blobs::"+d.String()).Result()
		if err == nil && n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptors not in redis db 3: %d keys, %v\n%s", n, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func redisTLSSection(dir string) (r config.Redis) {
	r.TLS.Certificate = filepath.Join(dir, "cli.pem")
	r.TLS.Key = filepath.Join(dir, "cli.key")
	r.TLS.RootCAs = []string{filepath.Join(dir, "ca.pem")}
	return r
}

// TestStorageOptionsTakeBlobDescriptorSize: the key reaches the content
// model (whose cache test checks the bound).
func TestStorageOptionsTakeBlobDescriptorSize(t *testing.T) {
	var cfg config.Config
	cfg.Storage.Cache.BlobDescriptorSize = 7
	if got := storageOptions(&cfg).BlobDescriptors; got != 7 {
		t.Fatalf("BlobDescriptors = %d, want 7", got)
	}
}

// TestRedisOptionsMapTheSection: the keys the real-server tests cannot
// tell apart reach go-redis; Distribution 2's pool keys fill in where the
// go-redis ones are unset; tls.enabled alone turns TLS on.
func TestRedisOptionsMapTheSection(t *testing.T) {
	r := config.Redis{
		Addr: "a:1", Addrs: []string{"b:2"}, ClientName: "berth", MasterName: "m",
		SentinelUsername: "su", SentinelPassword: "sp", MaxRetries: 4,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second,
		PoolSize: 9, PoolTimeout: 4 * time.Second, MinIdleConns: 1, ConnMaxLifetime: time.Hour,
		MaxRedirects: 5, RouteRandomly: true, DisableIdentity: true,
		Pool: config.RedisPool{MaxIdle: 7, MaxActive: 8, IdleTimeout: time.Minute},
		TLS:  config.RedisTLS{Enabled: true},
	}
	o, err := redisOptions(r)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"addrs", strings.Join(o.Addrs, ","), "a:1,b:2"},
		{"clientname", o.ClientName, "berth"},
		{"mastername", o.MasterName, "m"},
		{"sentinel credentials", o.SentinelUsername + "/" + o.SentinelPassword, "su/sp"},
		{"maxretries", o.MaxRetries, 4},
		{"timeouts", [3]time.Duration{o.DialTimeout, o.ReadTimeout, o.WriteTimeout}, [3]time.Duration{time.Second, 2 * time.Second, 3 * time.Second}},
		{"poolsize", o.PoolSize, 9},
		{"pooltimeout", o.PoolTimeout, 4 * time.Second},
		{"minidleconns", o.MinIdleConns, 1},
		{"connmaxlifetime", o.ConnMaxLifetime, time.Hour},
		{"maxredirects", o.MaxRedirects, 5},
		{"routerandomly", o.RouteRandomly, true},
		{"disableidentity", o.DisableIdentity, true},
		{"pool.maxidle", o.MaxIdleConns, 7},
		{"pool.maxactive", o.MaxActiveConns, 8},
		{"pool.idletimeout", o.ConnMaxIdleTime, time.Minute},
		{"tls.enabled", o.TLSConfig != nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if _, err := redisOptions(config.Redis{TLS: config.RedisTLS{Certificate: "c.pem"}}); err == nil {
		t.Error("a certificate without its key was accepted")
	}
}

// TestConfigCheckConnectAsksRedis: serve refuses a shared cache that does
// not answer at start; config check, which needs no network, says so only
// with --connect, and then refuses as serve does. A Redis that answers
// passes both.
func TestConfigCheckConnectAsksRedis(t *testing.T) {
	dir := t.TempDir()
	live := testenv.StartRedis(t)
	closed := freeAddr(t)
	write := func(name, addr string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: redis
redis:
  addrs: [%s]
  dialtimeout: 200ms
`, filepath.Join(dir, "root"), addr))
		return p
	}
	down, up := write("down.yml", closed), write("up.yml", live.Addr)
	tests := []struct {
		name    string
		args    []string
		refused bool
	}{
		{"unreachable, offline check", []string{"config", "check", down}, false},
		{"unreachable, --connect", []string{"config", "check", "--connect", down}, true},
		{"live, --connect", []string{"config", "check", "--connect", up}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tt.args...)
			if !tt.refused {
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				return
			}
			if code != 1 || !strings.Contains(stderr, "redis") || !strings.Contains(stderr, closed) {
				t.Fatalf("exit %d, stderr:\n%s\nwant 1 and an error naming redis and %s", code, stderr, closed)
			}
		})
	}
}
