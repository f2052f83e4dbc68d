// Package htpasswd is basic authentication against an Apache htpasswd file
// of bcrypt hashes. An authenticated user may do everything; the file is
// re-read when it changes, without a restart.
package htpasswd

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/registry"
)

// ErrFormat is wrapped by the error returned for a line that is not
// "user:bcrypt-hash".
var ErrFormat = errors.New("not a user:bcrypt-hash line")

// Controller is the htpasswd access controller.
type Controller struct {
	realm string
	path  string
	log   *slog.Logger

	// dummy is compared against when the user is unknown, so a request
	// for a user that does not exist costs as much as one with a wrong
	// password and timing does not reveal who exists. Its cost is the
	// htpasswd tool's default.
	dummy []byte

	// compare is bcrypt.CompareHashAndPassword; tests count its calls.
	compare func(hash, password []byte) error

	mu      sync.Mutex
	users   map[string][]byte
	modTime time.Time
	size    int64

	// verified remembers credentials that passed bcrypt, so a client
	// sending the same password on every request (docker sends it on
	// each of the dozens of requests of a push) pays the bcrypt cost
	// once instead of tens of milliseconds per request. The key is an
	// HMAC of user and password under cacheKey, never the password; the
	// value is the hash it matched, so a changed or removed entry in the
	// file invalidates it. Only successes are kept: a wrong password or
	// an unknown user always costs a full comparison.
	cacheKey []byte
	verified map[[sha256.Size]byte]string
}

// maxVerified bounds the credential cache; past it an arbitrary entry is
// dropped, which at worst costs that client one more bcrypt comparison.
const maxVerified = 1024

// New reads the htpasswd file at path. A line that is not a bcrypt entry
// (MD5, SHA1, crypt, plain text) is refused, naming the file and line.
func New(realm, path string, log *slog.Logger) (*Controller, error) {
	if path == "" {
		return nil, errors.New("auth.htpasswd.path is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{
		realm: realm, path: path, log: log,
		compare:  bcrypt.CompareHashAndPassword,
		cacheKey: make([]byte, 32),
		verified: make(map[[sha256.Size]byte]string),
	}
	if _, err := rand.Read(c.cacheKey); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("auth.htpasswd.path: %w", err)
	}
	users, err := load(path)
	if err != nil {
		return nil, err
	}
	c.users, c.modTime, c.size = users, fi.ModTime(), fi.Size()
	c.dummy, err = bcrypt.GenerateFromPassword([]byte("berth-unknown-user"), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// load parses the file: one "user:hash" per line, blank lines and #
// comments ignored.
func load(path string) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth.htpasswd.path: %w", err)
	}
	users := make(map[string][]byte)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%s:%d: %w", path, n, ErrFormat)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: only bcrypt hashes are accepted (htpasswd -B): %w", path, n, user, ErrFormat)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return users, nil
}

// current returns the users, re-reading the file when its modification
// time or size changed. A file that became unreadable or invalid keeps
// the last good users, with an error in the log, so an edit half-way
// does not lock everyone out.
func (c *Controller) current() map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	fi, err := os.Stat(c.path)
	if err != nil {
		c.log.Error("htpasswd file unreadable, keeping previous users", "path", c.path, "error", err)
		return c.users
	}
	if fi.ModTime().Equal(c.modTime) && fi.Size() == c.size {
		return c.users
	}
	users, err := load(c.path)
	if err != nil {
		c.log.Error("htpasswd file invalid, keeping previous users", "path", c.path, "error", err)
		return c.users
	}
	c.users, c.modTime, c.size = users, fi.ModTime(), fi.Size()
	c.log.Info("htpasswd file reloaded", "path", c.path, "users", len(users))
	return users
}

// Authorize lets in a request with a valid user and password; an
// authenticated user may do everything.
func (c *Controller) Authorize(w http.ResponseWriter, r *http.Request, _ []registry.Access) (*http.Request, error) {
	challenge := fmt.Sprintf("Basic realm=%q", c.realm)
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil, auth.Unauthorized(w, challenge, "authentication required", nil)
	}
	if !c.check(user, pass) {
		return nil, auth.Unauthorized(w, challenge, "invalid username or password", nil)
	}
	ctx := registry.WithUser(r.Context(), user)
	return r.WithContext(registry.WithPullable(ctx, registry.Pullable{All: true})), nil
}

// check reports whether user exists and pass is theirs, in the same time
// for an unknown user as for a wrong password.
func (c *Controller) check(user, pass string) bool {
	hash, known := c.current()[user]
	mac := hmac.New(sha256.New, c.cacheKey)
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(pass))
	var key [sha256.Size]byte
	mac.Sum(key[:0])
	c.mu.Lock()
	cached, hit := c.verified[key]
	c.mu.Unlock()
	if hit && known && cached == string(hash) {
		return true
	}
	if !known {
		hash = c.dummy
	}
	// The bcrypt comparison runs either way; only then is known consulted.
	if err := c.compare(hash, []byte(pass)); err != nil || !known {
		return false
	}
	c.mu.Lock()
	if len(c.verified) >= maxVerified {
		for k := range c.verified {
			delete(c.verified, k)
			break
		}
	}
	c.verified[key] = string(hash)
	c.mu.Unlock()
	return true
}
