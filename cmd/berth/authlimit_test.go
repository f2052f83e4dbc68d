package main

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/registry"
)

// TestSetupAuthAppliesTheHtpasswdFailureLimit checks that
// berth.auth.htpasswd reaches the controller: with maxfailures 2, the
// third attempt from one address is refused with 429, and with 0 it is
// not.
func TestSetupAuthAppliesTheHtpasswdFailureLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte("alice:$2y$04$Dvy1FOnhBQnhWOTuFGEWsOAdOl6ZeMlqwLVbxOVrPNi6wbUmaAcHy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max  int
		want registry.Code
	}{{2, registry.CodeTooManyRequests}, {0, registry.CodeUnauthorized}} {
		cfg := &config.Config{
			Auth:  config.Auth{Htpasswd: &config.Htpasswd{Realm: "r", Path: path}},
			Berth: config.Berth{Auth: config.BerthAuth{Htpasswd: config.BerthHtpasswd{MaxFailures: tc.max, FailureWindow: time.Minute}}},
		}
		authorize, err := setupAuth(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		var last error
		for range 3 {
			r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
			r.SetBasicAuth("alice", "wrong")
			_, last = authorize(httptest.NewRecorder(), r, nil)
		}
		var e *registry.Error
		if !errors.As(last, &e) || e.Code != tc.want {
			t.Fatalf("maxfailures %d: third failure answered %v, want %s", tc.max, last, tc.want)
		}
	}
}
