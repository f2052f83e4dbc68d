package main

import (
	"testing"
	"time"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/storage/mirror"
)

// Every proxy and berth.mirrors key reaches the mirror's upstreams.
func TestMirrorUpstreamsTakeEveryKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []mirror.Upstream
		creds      []mirror.Credentials
	}{
		{"proxy with berth.proxy", `proxy: {remoteurl: https://up.example.com, username: u, password: p, ttl: 2h, cachewritetimeout: 7s}
berth: {proxy: {freshness: 0s, timeout: 5s}}`,
			[]mirror.Upstream{{RemoteURL: "https://up.example.com", TTL: 2 * time.Hour, Freshness: -1, Timeout: 5 * time.Second, WriteTimeout: 7 * time.Second}},
			[]mirror.Credentials{mirror.Static{Username: "u", Password: "p"}}},
		{"proxy defaults", `proxy: {remoteurl: https://up.example.com, exec: {command: helper, lifetime: 1h}}`,
			[]mirror.Upstream{{RemoteURL: "https://up.example.com", TTL: 168 * time.Hour}},
			[]mirror.Credentials{&mirror.Helper{Command: "helper", ServerURL: "https://up.example.com", Lifetime: time.Hour}}},
		{"mirrors", `berth:
  proxy: {freshness: 10s, timeout: 3s}
  mirrors:
    - {prefix: docker.io, remoteurl: https://a.example.com, username: u, passwordfile: /pw, ttl: 0s}
    - {prefix: ghcr.io, remoteurl: https://b.example.com, freshness: 1m, timeout: 9s}`,
			[]mirror.Upstream{
				{Prefix: "docker.io", RemoteURL: "https://a.example.com", Freshness: 10 * time.Second, Timeout: 3 * time.Second},
				{Prefix: "ghcr.io", RemoteURL: "https://b.example.com", TTL: 168 * time.Hour, Freshness: time.Minute, Timeout: 9 * time.Second},
			},
			[]mirror.Credentials{mirror.PasswordFile{Username: "u", Path: "/pw"}, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("config.yml", []byte("version: 0.1\nstorage: inmemory\n"+tc.yaml+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := mirrorUpstreams(cfg)
			if len(got) != len(tc.want) {
				t.Fatalf("%d upstreams, want %d", len(got), len(tc.want))
			}
			for i := range got {
				creds := got[i].Credentials
				got[i].Credentials = nil
				if got[i] != tc.want[i] {
					t.Errorf("upstream %d = %+v, want %+v", i, got[i], tc.want[i])
				}
				switch want := tc.creds[i].(type) {
				case *mirror.Helper:
					h, ok := creds.(*mirror.Helper)
					if !ok || h.Command != want.Command || h.ServerURL != want.ServerURL || h.Lifetime != want.Lifetime {
						t.Errorf("credentials %#v, want %#v", creds, want)
					}
				default:
					if creds != tc.creds[i] {
						t.Errorf("credentials %#v, want %#v", creds, tc.creds[i])
					}
				}
			}
		})
	}
}
