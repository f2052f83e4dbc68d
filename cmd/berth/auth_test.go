package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/config"
)

func TestSetupAuthBuildsTheConfiguredController(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "htpasswd")
	// A bcrypt entry (cost 4); only its form matters here.
	if err := os.WriteFile(good, []byte("alice:$2y$04$Dvy1FOnhBQnhWOTuFGEWsOAdOl6ZeMlqwLVbxOVrPNi6wbUmaAcHy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	md5 := filepath.Join(dir, "md5")
	if err := os.WriteFile(md5, []byte("alice:$apr1$x$y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		auth    config.Auth
		wantNil bool
		wantErr string
	}{
		{name: "no auth section", wantNil: true},
		{name: "none", auth: config.Auth{None: &config.None{}}, wantNil: true},
		{name: "htpasswd", auth: config.Auth{Htpasswd: &config.Htpasswd{Realm: "r", Path: good}}},
		{name: "htpasswd md5", auth: config.Auth{Htpasswd: &config.Htpasswd{Realm: "r", Path: md5}}, wantErr: md5 + ":1"},
		{name: "token without keys", auth: config.Auth{Token: &config.Token{Realm: "r", Service: "s", Issuer: "i"}}, wantErr: "auth.token"},
		{name: "silly, development only as in Distribution", auth: config.Auth{Silly: &config.Silly{Realm: "r", Service: "s"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := setupAuth(&config.Config{Auth: tc.auth}, slog.New(slog.DiscardHandler))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (a == nil) != tc.wantNil {
				t.Fatalf("authorizer nil = %v, want %v", a == nil, tc.wantNil)
			}
		})
	}
}
