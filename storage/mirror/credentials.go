package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Credentials give the username and password an upstream is asked with.
type Credentials interface {
	Get(ctx context.Context) (username, password string, err error)
}

// Static are fixed credentials (proxy.username and proxy.password).
type Static struct{ Username, Password string }

// Get returns the fixed credentials.
func (s Static) Get(context.Context) (string, string, error) { return s.Username, s.Password, nil }

// Helper runs a Docker credential helper (proxy.exec): Command is run with
// the argument "get" and the upstream URL on its standard input, and
// answers {"Username":…,"Secret":…}. What it answers is kept for Lifetime,
// or for good when Lifetime is zero.
type Helper struct {
	Command   string
	ServerURL string
	Lifetime  time.Duration
	// Timeout bounds one run of the command.
	Timeout time.Duration

	mu       sync.Mutex
	user     string
	secret   string
	fetched  time.Time
	hasValue bool
}

// Get returns the helper's credentials, running it when none are kept or
// they are older than Lifetime.
func (h *Helper) Get(ctx context.Context) (string, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hasValue && (h.Lifetime <= 0 || time.Since(h.fetched) < h.Lifetime) {
		return h.user, h.secret, nil
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Command, "get")
	cmd.Stdin = bytes.NewBufferString(h.ServerURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("credential helper %s: %w: %s", h.Command, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var answer struct {
		Username string
		Secret   string
	}
	if err := json.Unmarshal(out, &answer); err != nil {
		return "", "", fmt.Errorf("credential helper %s: unreadable answer: %w", h.Command, err)
	}
	h.user, h.secret, h.fetched, h.hasValue = answer.Username, answer.Secret, time.Now(), true
	return h.user, h.secret, nil
}

// PasswordFile reads the password from a file at every use (berth.mirrors
// passwordfile), so a mounted Kubernetes secret that is rotated takes
// effect without a restart.
type PasswordFile struct {
	Username string
	Path     string
}

// Get returns the username and the file's content without its trailing
// newline.
func (p PasswordFile) Get(context.Context) (string, string, error) {
	b, err := os.ReadFile(p.Path)
	if err != nil {
		return "", "", fmt.Errorf("password file: %w", err)
	}
	return p.Username, strings.TrimRight(string(b), "\r\n"), nil
}
