package main

import (
	"context"
	"errors"
	"io"
)

// garbageCollect is the verb Distribution's runbooks call. Its mark and
// sweep arrive with the operations issue; until then it refuses loudly
// rather than pretending to have freed anything.
func garbageCollect(_ context.Context, args []string, _, _ io.Writer, environ []string) error {
	if len(args) == 0 {
		return errors.New("usage: berth garbage-collect CONFIG [--dry-run] [--delete-untagged]")
	}
	if _, err := loadConfig(args[:1], environ); err != nil {
		return err
	}
	return errors.New("garbage-collect: not available in this version of berth")
}
