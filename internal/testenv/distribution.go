package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Distribution is a running CNCF Distribution registry (.cache/bin/registry)
// on a loopback port with its own storage directory.
type Distribution struct {
	Addr string // 127.0.0.1:PORT
	Root string // its filesystem storage root
	// User and Password log in when the registry was started with them
	// (htpasswd basic auth); empty otherwise.
	User, Password string
	Proc           *Process
}

// StartDistribution starts Distribution with filesystem storage, deletes
// enabled and an access log line per request; with user set, pulls and
// pushes need basic auth as user/password (an htpasswd file). extra is
// appended to the config (another top-level section).
func StartDistribution(t testing.TB, user, password, extra string) *Distribution {
	t.Helper()
	bin := Tool(t, "registry")
	dir := t.TempDir()
	d := &Distribution{Addr: FreeAddr(t), Root: filepath.Join(dir, "data"), User: user, Password: password}
	auth := ""
	if user != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(file, []byte(user+":"+string(h)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: upstream\n    path: %s\n", file)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s%s`, d.Root, d.Addr, auth, extra)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Proc = StartProcess(t, bin, []string{"serve", cfgPath}, nil)
	d.Proc.WaitHTTP(t, "http://"+d.Addr+"/v2/", 30*time.Second)
	return d
}

// Requests counts the requests with method whose path is path that the
// registry logged as served so far.
func (d *Distribution) Requests(method, path string) int {
	n := 0
	for _, line := range strings.Split(d.Proc.FullLog(), "\n") {
		if strings.Contains(line, "response completed") &&
			strings.Contains(line, "http.request.method="+method) &&
			(strings.Contains(line, `http.request.uri="`+path+`"`) || strings.Contains(line, "http.request.uri="+path+" ")) {
			n++
		}
	}
	return n
}
