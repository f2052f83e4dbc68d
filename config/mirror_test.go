package config

import (
	"strings"
	"testing"
	"time"
)

func TestBerthMirrorsDefaultsAndChecks(t *testing.T) {
	c, err := Parse("config.yml", []byte(minimal+"berth:\n  proxy: {freshness: 0s, timeout: 5s}\n  mirrors:\n    - {prefix: /docker.io/, remoteurl: https://registry-1.docker.io, username: u, passwordfile: /run/pw}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Berth.Mirrors[0]
	if m.Prefix != "docker.io" || *m.TTL != 168*time.Hour || m.PasswordFile != "/run/pw" {
		t.Fatalf("mirror %+v", m)
	}
	if *c.Berth.Proxy.Freshness != 0 || c.Berth.Proxy.Timeout != 5*time.Second {
		t.Fatalf("berth.proxy %+v", c.Berth.Proxy)
	}
	env := []string{"REGISTRY_BERTH_MIRRORS_0_PASSWORD=from-env"}
	c, err = Parse("config.yml", []byte(minimal+"berth:\n  mirrors:\n    - {prefix: ghcr.io, remoteurl: https://ghcr.io}\n"), env)
	if err != nil || c.Berth.Mirrors[0].Password != "from-env" {
		t.Fatalf("password from the environment: %v %+v", err, c.Berth.Mirrors)
	}
	if y, err := c.RedactedYAML(); err != nil || strings.Contains(string(y), "from-env") {
		t.Fatalf("mirror password not redacted (%v):\n%s", err, y)
	}

	for _, tt := range []struct{ name, data, want string }{
		{"no prefix", "berth:\n  mirrors:\n    - {remoteurl: https://a.example.com}\n", "berth.mirrors[0].prefix: required"},
		{"prefix not a name", "berth:\n  mirrors:\n    - {prefix: Docker.IO:5000, remoteurl: https://a.example.com}\n", "berth.mirrors[0].prefix: \"Docker.IO:5000\" is not"},
		{"same prefix twice", "berth:\n  mirrors:\n    - {prefix: a.io, remoteurl: https://a.example.com}\n    - {prefix: a.io, remoteurl: https://b.example.com}\n", "berth.mirrors[1].prefix: \"a.io\" is served by an earlier mirror"},
		{"no url", "berth:\n  mirrors:\n    - {prefix: a.io}\n", "berth.mirrors[0].remoteurl: required"},
		{"two passwords", "berth:\n  mirrors:\n    - {prefix: a.io, remoteurl: https://a.example.com, password: p, passwordfile: /f}\n", "berth.mirrors[0].passwordfile: set password or passwordfile"},
		{"with the proxy section", "proxy: {remoteurl: https://a.example.com}\nberth:\n  mirrors:\n    - {prefix: a.io, remoteurl: https://a.example.com}\n", "berth.mirrors: the proxy section mirrors every repository"},
		{"negative ttl", "berth:\n  mirrors:\n    - {prefix: a.io, remoteurl: https://a.example.com, ttl: -1h}\n", "berth.mirrors[0].ttl: must not be negative"},
		{"unknown key", "berth:\n  mirrors:\n    - {prefix: a.io, remoteurl: https://a.example.com, pasword: x}\n", "berth.mirrors[0].pasword: unknown key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.yml", []byte(minimal+tt.data), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
