package storage

import (
	"context"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// Every instance on a store runs the upload purger at its interval, and a
// purge lists every repository's uploads: on an object store, N instances
// would pay for N listings per interval for the same result. So a purge
// notes when it ran, and one that finds a purge noted less than half an
// interval ago leaves it at that. Two that start together both run, which
// is harmless (their deletes are the same); Distribution walks only
// blobs/ and repositories/, so it never sees the note.
const purgeNotePath = rootPath + "/_berth/purge/last"

// purgedRecently tells whether any instance noted a purge within d of now.
// A note that cannot be read counts as none: purging twice is safe.
func (r *Registry) purgedRecently(ctx context.Context, now time.Time, d time.Duration) bool {
	b, err := driver.GetContent(ctx, r.driver, purgeNotePath, 64)
	if err != nil {
		return false
	}
	last, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return false
	}
	if now.Sub(last) < d && !last.After(now.Add(d)) {
		r.log.Debug("upload purge skipped: another instance purged recently", "at", last)
		return true
	}
	return false
}

// notePurge records that a purge ran at t.
func (r *Registry) notePurge(ctx context.Context, t time.Time) {
	if err := driver.PutContent(context.WithoutCancel(ctx), r.driver, purgeNotePath, []byte(t.UTC().Format(time.RFC3339Nano))); err != nil {
		r.log.Warn("upload purge not noted", "err", err)
	}
}
