//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package notifications

import "os"

// lockFile does nothing where flock does not exist: one process per spool
// is then the operator's to ensure.
func lockFile(*os.File) error { return nil }
