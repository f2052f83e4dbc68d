// Package htpasswd is basic authentication against an Apache htpasswd file
// of bcrypt hashes. An authenticated user may do everything; the file is
// re-read when it changes, without a restart. A client that fails too many
// logins in a row is answered 429 until its window ends.
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

// Options configure the controller: auth.htpasswd's keys and Berth's
// berth.auth.htpasswd.
type Options struct {
	Realm string
	Path  string
	// MaxFailures is how many failed logins a client may make within
	// FailureWindow before it is answered 429 TOOMANYREQUESTS with
	// Retry-After until the window ends; 0 turns the limit off.
	MaxFailures   int
	FailureWindow time.Duration
}

// Controller is the htpasswd access controller.
type Controller struct {
	realm string
	path  string
	log   *slog.Logger

	// compare is bcrypt.CompareHashAndPassword; tests count its calls.
	compare func(hash, password []byte) error

	// failed counts failed logins per client; nil when off.
	failed *failures

	mu      sync.Mutex
	users   map[string][]byte
	modTime time.Time
	size    int64

	// decoy is compared against when the user is unknown, so a request
	// for a user that does not exist costs as much as one with a wrong
	// password and timing does not reveal who exists. Its cost is the
	// one most of the file's hashes have (the highest of the most
	// common), and it is made again when a reload changes that.
	decoy []byte

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

// New reads the htpasswd file at opts.Path. A line that is not a bcrypt
// entry (MD5, SHA1, crypt, plain text) is refused, naming the file and
// line.
func New(opts Options, log *slog.Logger) (*Controller, error) {
	if opts.Path == "" {
		return nil, errors.New("auth.htpasswd.path is required")
	}
	if opts.MaxFailures > 0 && opts.FailureWindow <= 0 {
		return nil, errors.New("berth.auth.htpasswd.failurewindow must be positive when maxfailures is set")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{
		realm: opts.Realm, path: opts.Path, log: log,
		compare:  bcrypt.CompareHashAndPassword,
		failed:   newFailures(opts.MaxFailures, opts.FailureWindow),
		cacheKey: make([]byte, 32),
		verified: make(map[[sha256.Size]byte]string),
	}
	if _, err := rand.Read(c.cacheKey); err != nil {
		return nil, err
	}
	fi, err := os.Stat(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("auth.htpasswd.path: %w", err)
	}
	users, err := load(opts.Path)
	if err != nil {
		return nil, err
	}
	c.users, c.modTime, c.size = users, fi.ModTime(), fi.Size()
	if err := c.makeDecoy(users); err != nil {
		return nil, err
	}
	return c, nil
}

// makeDecoy makes the decoy hash at the cost of the users' hashes, unless
// the one it has already has that cost.
func (c *Controller) makeDecoy(users map[string][]byte) error {
	cost := usualCost(users)
	if have, err := bcrypt.Cost(c.decoy); err == nil && have == cost {
		return nil
	}
	decoy, err := bcrypt.GenerateFromPassword([]byte("berth-unknown-user"), cost)
	if err != nil {
		return err
	}
	c.decoy = decoy
	return nil
}

// usualCost is the bcrypt cost most hashes in users have, the highest of
// them on a tie (an unknown user then costs at least as much as most known
// ones); the htpasswd tool's default for a file with no users.
func usualCost(users map[string][]byte) int {
	count := map[int]int{}
	best, bestN := bcrypt.DefaultCost, 0
	for _, h := range users {
		cost, err := bcrypt.Cost(h)
		if err != nil {
			continue
		}
		count[cost]++
		if n := count[cost]; n > bestN || (n == bestN && cost > best) {
			best, bestN = cost, n
		}
	}
	return best
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
	if err := c.makeDecoy(users); err != nil {
		c.log.Error("htpasswd decoy hash not made, keeping previous users", "path", c.path, "error", err)
		return c.users
	}
	c.users, c.modTime, c.size = users, fi.ModTime(), fi.Size()
	c.log.Info("htpasswd file reloaded", "path", c.path, "users", len(users))
	return users
}

// Authorize lets in a request with a valid user and password; an
// authenticated user may do everything. A client past its failed-login
// budget gets 429 with Retry-After, unless it sends credentials that were
// already verified (a user behind the same address as an attacker keeps
// working).
func (c *Controller) Authorize(w http.ResponseWriter, r *http.Request, _ []registry.Access) (*http.Request, error) {
	challenge := fmt.Sprintf("Basic realm=%q", c.realm)
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil, auth.Unauthorized(w, challenge, "authentication required", nil)
	}
	hash, known, key := c.lookup(user, pass)
	if !c.isVerified(key, hash, known) {
		client := clientKey(r)
		if wait, blocked := c.failed.blocked(client); blocked {
			return nil, auth.TooManyRequests(w, wait, "too many failed logins")
		}
		if !c.verify(key, hash, known, pass) {
			if c.failed.fail(client) {
				// Once per client and window; each refusal is in the
				// access log as a 429.
				c.log.WarnContext(r.Context(), "htpasswd failed logins over the limit", "client", client)
			}
			return nil, auth.Unauthorized(w, challenge, "invalid username or password", nil)
		}
	}
	ctx := registry.WithUser(r.Context(), user)
	return r.WithContext(registry.WithPullable(ctx, registry.Pullable{All: true})), nil
}

// check reports whether user exists and pass is theirs, in the same time
// for an unknown user as for a wrong password (no failure limit).
func (c *Controller) check(user, pass string) bool {
	hash, known, key := c.lookup(user, pass)
	return c.isVerified(key, hash, known) || c.verify(key, hash, known, pass)
}

// lookup returns user's hash (the decoy for an unknown user), whether the
// user is known, and the credentials' key in the verified cache.
func (c *Controller) lookup(user, pass string) ([]byte, bool, [sha256.Size]byte) {
	hash, known := c.current()[user]
	mac := hmac.New(sha256.New, c.cacheKey)
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(pass))
	var key [sha256.Size]byte
	mac.Sum(key[:0])
	if !known {
		c.mu.Lock()
		hash = c.decoy
		c.mu.Unlock()
	}
	return hash, known, key
}

// isVerified reports whether these credentials passed bcrypt against the
// user's current hash before.
func (c *Controller) isVerified(key [sha256.Size]byte, hash []byte, known bool) bool {
	if !known {
		return false
	}
	c.mu.Lock()
	cached, hit := c.verified[key]
	c.mu.Unlock()
	return hit && cached == string(hash)
}

// verify runs the bcrypt comparison, for an unknown user too (against the
// decoy); only then is known consulted. A success is remembered.
func (c *Controller) verify(key [sha256.Size]byte, hash []byte, known bool, pass string) bool {
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
