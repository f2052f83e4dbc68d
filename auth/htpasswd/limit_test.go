package htpasswd

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/registry"
)

// entryCost is an htpasswd line hashed at cost.
func entryCost(t *testing.T, user, pass string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), cost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

func TestDecoyCostsWhatTheFilesHashesCost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	// Most hashes at 6, one at 5: an unknown user costs 6.
	writeFile(t, path, entryCost(t, "alice", "a", 6)+entryCost(t, "bob", "b", 5)+entryCost(t, "carol", "c", 6))
	c, err := New(Options{Realm: "r", Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	decoyCost := func() int {
		t.Helper()
		c.mu.Lock()
		defer c.mu.Unlock()
		cost, err := bcrypt.Cost(c.decoy)
		if err != nil {
			t.Fatal(err)
		}
		return cost
	}
	if got := decoyCost(); got != 6 {
		t.Fatalf("decoy cost %d, want the file's 6", got)
	}
	// The unknown user is compared against the decoy.
	var compared []byte
	c.compare = func(hash, pass []byte) error {
		compared = hash
		return bcrypt.CompareHashAndPassword(hash, pass)
	}
	if c.check("mallory", "x") {
		t.Fatal("unknown user let in")
	}
	if cost, _ := bcrypt.Cost(compared); cost != 6 {
		t.Fatalf("unknown user compared at cost %d, want 6", cost)
	}
	// A tie goes to the higher cost; a reload that changes the cost
	// makes the decoy again.
	writeFile(t, path, entryCost(t, "alice", "a", 4)+entryCost(t, "bob", "b", 5))
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	c.check("mallory", "x")
	if got := decoyCost(); got != 5 {
		t.Fatalf("decoy cost after reload %d, want 5", got)
	}
}

// limited is a controller with a limit of max failures per window and a
// clock the test moves.
func limited(t *testing.T, max int, window time.Duration) (*Controller, *time.Time) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, path, entry(t, "alice", "secret")+entry(t, "bob", "pw"))
	c, err := New(Options{Realm: "r", Path: path, MaxFailures: max, FailureWindow: window}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if c.failed != nil {
		c.failed.now = func() time.Time { return now }
	}
	return c, &now
}

// login asks c for user:pass from remote, with extra headers, and returns
// the recorder and the error.
func login(c *Controller, remote, user, pass string, hdr ...string) (*httptest.ResponseRecorder, error) {
	r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	r.RemoteAddr = remote
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	_, err := c.Authorize(w, r, nil)
	return w, err
}

func codeOf(err error) registry.Code {
	var e *registry.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestRepeatedFailuresGet429UntilTheWindowEnds(t *testing.T) {
	c, now := limited(t, 3, time.Minute)
	const attacker = "192.0.2.7:5000"
	// Anonymous requests (docker's first ping) are not failures.
	for range 5 {
		if _, err := login(c, attacker, "", ""); codeOf(err) != registry.CodeUnauthorized {
			t.Fatalf("anonymous: %v", err)
		}
	}
	// Bob logs in from the attacker's address before the attack.
	if _, err := login(c, attacker, "bob", "pw"); err != nil {
		t.Fatal(err)
	}
	for i, user := range []string{"alice", "mallory", "alice"} {
		if _, err := login(c, attacker, user, "guess"); codeOf(err) != registry.CodeUnauthorized {
			t.Fatalf("failure %d: %v, want UNAUTHORIZED", i+1, err)
		}
	}
	*now = now.Add(20 * time.Second)
	// Out of attempts: even the right password waits, and costs no bcrypt.
	n := countCompares(c)
	w, err := login(c, attacker, "alice", "secret")
	if codeOf(err) != registry.CodeTooManyRequests {
		t.Fatalf("after 3 failures: %v, want TOOMANYREQUESTS", err)
	}
	if got := w.Header().Get("Retry-After"); got != "40" {
		t.Fatalf("Retry-After %q, want 40 (the rest of the window)", got)
	}
	if *n != 0 {
		t.Fatalf("%d bcrypt comparisons for a refused client", *n)
	}
	// X-Forwarded-For is the client's to write: it changes nothing.
	if _, err := login(c, attacker, "alice", "secret", "X-Forwarded-For", "198.51.100.1"); codeOf(err) != registry.CodeTooManyRequests {
		t.Fatalf("X-Forwarded-For escaped the limit: %v", err)
	}
	// Already verified credentials still get in; other clients are not
	// affected.
	if _, err := login(c, attacker, "bob", "pw"); err != nil {
		t.Fatalf("verified user refused during the attack: %v", err)
	}
	if _, err := login(c, "198.51.100.1:1234", "alice", "secret"); err != nil {
		t.Fatalf("another client refused: %v", err)
	}
	// After the window, the right password works again.
	*now = now.Add(40 * time.Second)
	if _, err := login(c, attacker, "alice", "secret"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestLimitCountsAnIPv6ClientByItsSlash64(t *testing.T) {
	c, _ := limited(t, 2, time.Minute)
	login(c, "[2001:db8:1:2::1]:443", "alice", "guess")
	login(c, "[2001:db8:1:2:ffff::9]:443", "alice", "guess")
	if _, err := login(c, "[2001:db8:1:2:abcd::5]:443", "alice", "secret"); codeOf(err) != registry.CodeTooManyRequests {
		t.Fatalf("same /64: %v, want TOOMANYREQUESTS", err)
	}
	if _, err := login(c, "[2001:db8:1:3::1]:443", "alice", "secret"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}

func TestLimitMemoryIsBoundedWhenAddressesRotate(t *testing.T) {
	c, _ := limited(t, 2, time.Minute)
	c.failed.limit = 50
	// An attacker with many addresses: each fails once, far past the
	// table's size.
	for i := range 500 {
		c.failed.fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if got := len(c.failed.clients); got > 50 {
		t.Fatalf("%d clients counted, want at most 50", got)
	}
	// Past the table, new addresses share one budget, which the rotation
	// used up: they do not escape the limit.
	if _, err := login(c, "10.9.9.9:1", "alice", "guess"); codeOf(err) != registry.CodeTooManyRequests {
		t.Fatalf("new address after rotation: %v, want TOOMANYREQUESTS", err)
	}
}

func TestTooManyRequestsIsAnOCIErrorWithRetryAfter(t *testing.T) {
	c, _ := limited(t, 1, time.Minute)
	srv, _ := newRegistry(t, c)
	do(t, http.MethodGet, srv.URL+"/v2/", "alice", "wrong")
	resp, body := do(t, http.MethodGet, srv.URL+"/v2/", "alice", "secret")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", resp.StatusCode, body)
	}
	if got := errorCode(t, body); got != "TOOMANYREQUESTS" {
		t.Fatalf("code %s", got)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" || strings.HasPrefix(ra, "0") || strings.HasPrefix(ra, "-") {
		t.Fatalf("Retry-After %q", ra)
	}
}

func TestLimitOffWhenMaxFailuresIsZero(t *testing.T) {
	c, _ := limited(t, 0, 0)
	for range 20 {
		if _, err := login(c, "192.0.2.1:1", "alice", "guess"); codeOf(err) != registry.CodeUnauthorized {
			t.Fatalf("with the limit off: %v", err)
		}
	}
	if _, err := login(c, "192.0.2.1:1", "alice", "secret"); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesALimitWithoutAWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, path, entry(t, "alice", "secret"))
	if _, err := New(Options{Realm: "r", Path: path, MaxFailures: 3}, nil); err == nil {
		t.Fatal("maxfailures without a window accepted")
	}
}
