package htpasswd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	_ "github.com/berth-registry/berth/storage/driver/inmemory"
)

func entry(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newRegistry serves the API on the inmemory driver behind c.
func newRegistry(t *testing.T, c *Controller) (*httptest.Server, driver.Driver) {
	t.Helper()
	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := storage.New(d, storage.Options{}, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(registry.New(reg, registry.Options{Authorize: c.Authorize}, nil))
	t.Cleanup(srv.Close)
	return srv, d
}

func do(t *testing.T, method, url, user, pass string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var eb struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &eb); err != nil || len(eb.Errors) == 0 {
		t.Fatalf("not an OCI error body: %q", body)
	}
	return eb.Errors[0].Code
}

func TestAuthorizeRefusesBadCredentialsWith401AndStoresNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, path, entry(t, "alice", "secret"))
	c, err := New(Options{Realm: "Berth Registry", Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, d := newRegistry(t, c)
	tests := []struct {
		name, user, pass string
	}{
		{"no credentials", "", ""},
		{"wrong password", "alice", "wrong"},
		{"unknown user", "mallory", "secret"},
		{"empty password", "alice", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, u := range []string{"/v2/", "/v2/app/blobs/uploads/", "/v2/_catalog"} {
				method := http.MethodGet
				if strings.Contains(u, "uploads") {
					method = http.MethodPost
				}
				resp, body := do(t, method, srv.URL+u, tc.user, tc.pass)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("%s %s: status %d, want 401", method, u, resp.StatusCode)
				}
				if got := errorCode(t, body); got != "UNAUTHORIZED" {
					t.Fatalf("code %s, want UNAUTHORIZED", got)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="Berth Registry"` {
					t.Fatalf("WWW-Authenticate %q", got)
				}
			}
			if names, err := d.List(context.Background(), "/"); len(names) > 0 || (err != nil && !errors.Is(err, driver.ErrNotFound)) {
				t.Fatalf("storage written to: List / = %v, %v", names, err)
			}
		})
	}
}

func TestAuthorizeLetsInValidUserAndNamesThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, path, "# users\n\n"+entry(t, "alice", "secret")+entry(t, "bob", "pw"))
	c, err := New(Options{Realm: "r", Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	req.SetBasicAuth("bob", "pw")
	r2, err := c.Authorize(httptest.NewRecorder(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := registry.UserFromContext(r2.Context()); got != "bob" {
		t.Fatalf("user %q, want bob", got)
	}
	srv, d := newRegistry(t, c)
	if resp, body := do(t, http.MethodPost, srv.URL+"/v2/app/blobs/uploads/", "alice", "secret"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload start: %d %s", resp.StatusCode, body)
	}
	// The same check the refusal test relies on sees this write.
	if names, _ := d.List(context.Background(), "/"); len(names) == 0 {
		t.Fatal("an accepted upload left nothing in storage")
	}
}

func TestNewRefusesNonBcryptEntriesNamingFileAndLine(t *testing.T) {
	tests := map[string]string{
		"md5":   "alice:$apr1$abcdefgh$0123456789abcdefghijkl\n",
		"sha1":  "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
		"plain": "alice:secret\n",
		"crypt": "alice:abJnggxhB/yWI\n",
		"colon": "nocolon\n",
	}
	for name, bad := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "htpasswd")
			writeFile(t, path, entry(t, "bob", "pw")+bad)
			_, err := New(Options{Realm: "r", Path: path}, nil)
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("err %v, want ErrFormat", err)
			}
			if !strings.Contains(err.Error(), path+":2") {
				t.Fatalf("error %q does not name %s:2", err, path)
			}
		})
	}
}

func TestNewRefusesMissingFile(t *testing.T) {
	if _, err := New(Options{Realm: "r", Path: filepath.Join(t.TempDir(), "none")}, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v, want ErrNotExist", err)
	}
}

func TestAuthorizeReloadsChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, path, entry(t, "alice", "secret"))
	c, err := New(Options{Realm: "r", Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(user, pass string) bool {
		req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		req.SetBasicAuth(user, pass)
		_, err := c.Authorize(httptest.NewRecorder(), req, nil)
		return err == nil
	}
	if !ok("alice", "secret") || ok("carol", "new") {
		t.Fatal("initial users wrong")
	}
	writeFile(t, path, entry(t, "carol", "new"))
	// The mtime may not move within the filesystem's granularity; set it.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if !ok("carol", "new") || ok("alice", "secret") {
		t.Fatal("changed file not reloaded")
	}
	// A broken edit keeps the last good users.
	writeFile(t, path, "carol:plaintext\n")
	later = later.Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if !ok("carol", "new") {
		t.Fatal("invalid file replaced the good users")
	}
}

// countCompares makes c count its bcrypt comparisons.
func countCompares(c *Controller) *int {
	n := new(int)
	compare := c.compare
	c.compare = func(hash, pass []byte) error {
		*n++
		return compare(hash, pass)
	}
	return n
}

func TestAuthorizeVerifiesRepeatedGoodCredentialsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, path, entry(t, "alice", "secret"))
	c, err := New(Options{Realm: "r", Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := countCompares(c)
	for range 5 {
		if !c.check("alice", "secret") {
			t.Fatal("good credentials refused")
		}
	}
	if *n != 1 {
		t.Fatalf("%d bcrypt comparisons for one user's repeated requests, want 1", *n)
	}
	// Failures are never remembered: each one costs a full comparison,
	// for a known user as for an unknown one.
	*n = 0
	for range 3 {
		if c.check("alice", "wrong") || c.check("mallory", "secret") {
			t.Fatal("bad credentials accepted")
		}
	}
	if *n != 6 {
		t.Fatalf("%d bcrypt comparisons for 6 failures, want 6", *n)
	}
}

func TestAuthorizeForgetsVerifiedPasswordWhenFileChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, path, entry(t, "alice", "old"))
	c, err := New(Options{Realm: "r", Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.check("alice", "old") {
		t.Fatal("good credentials refused")
	}
	writeFile(t, path, entry(t, "alice", "new"))
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if c.check("alice", "old") {
		t.Fatal("old password still accepted after the file changed it")
	}
	if !c.check("alice", "new") {
		t.Fatal("new password refused")
	}
}
