package mirror

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/berth-registry/berth/storage"
)

// Check refuses, without the network, what New would refuse in ups (a
// bad prefix, two upstreams for one, a remote URL that is not http(s)),
// and credentials that could never be read: a password file that cannot
// be read, a credential helper that is not an executable. New reads
// those only when an upstream asks, so serve calls Check at start, as
// `config check` does, and a typo is found before the first pull fails.
func Check(ups []Upstream) error {
	var errs []error
	seen := map[string]bool{}
	for _, u := range ups {
		if err := checkPrefix(strings.Trim(u.Prefix, "/"), seen); err != nil {
			errs = append(errs, err)
		}
		if _, err := newUpstream(u.RemoteURL, nil, u.Timeout, nil); err != nil {
			errs = append(errs, err)
		}
		switch c := u.Credentials.(type) {
		case PasswordFile:
			if _, err := os.ReadFile(c.Path); err != nil {
				errs = append(errs, fmt.Errorf("mirror %s: password file: %w", u.RemoteURL, err))
			}
		case *Helper:
			if _, err := exec.LookPath(c.Command); err != nil {
				errs = append(errs, fmt.Errorf("mirror %s: credential helper: %w", u.RemoteURL, err))
			}
		}
	}
	return errors.Join(errs...)
}

// checkPrefix refuses a prefix that is not a repository name's start, or
// one seen already, and marks it seen.
func checkPrefix(prefix string, seen map[string]bool) error {
	if prefix != "" && !storage.ValidRepositoryName(prefix) {
		return fmt.Errorf("mirror: prefix %q is not a repository name prefix", prefix)
	}
	if seen[prefix] {
		return fmt.Errorf("mirror: two upstreams for prefix %q", prefix)
	}
	seen[prefix] = true
	return nil
}
