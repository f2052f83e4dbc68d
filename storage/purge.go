package storage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// PurgeOptions controls PurgeUploads.
type PurgeOptions struct {
	// Age is how old an upload must be to count as abandoned.
	Age time.Duration
	// DryRun logs what would be removed and removes nothing.
	DryRun bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Every is how often each instance purges (maintenance.uploadpurging
	// .interval). When set, a purge that another instance on the store
	// finished less than Every/2 ago is skipped (purgeturn.go).
	Every time.Duration
}

// PurgeResult counts what PurgeUploads removed (or would have).
type PurgeResult struct {
	Uploads    int  // _uploads/<id> directories
	Unfinished int  // driver-level unfinished writes cancelled
	Skipped    bool // another instance purged recently
}

// PurgeUploads removes the upload sessions started more than Age ago, and
// cancels the unfinished writes (multipart uploads, uncommitted blocks,
// partial files) the driver reports as older than Age: a client that gave
// up leaves both behind, and on object stores the second is billed.
func (r *Registry) PurgeUploads(ctx context.Context, opts PurgeOptions) (res PurgeResult, err error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cutoff := now().Add(-opts.Age)
	if opts.Every > 0 && r.purgedRecently(ctx, now(), opts.Every/2) {
		res.Skipped = true
		return res, nil
	}
	if !opts.DryRun {
		defer func() {
			if err == nil {
				r.notePurge(ctx, now())
			}
		}()
	}

	var old []string
	err = driver.Walk(ctx, r.driver, repositoriesRoot, func(fi driver.FileInfo) error {
		if !fi.IsDir || path.Base(path.Dir(fi.Path)) != "_uploads" {
			return nil
		}
		started, ok := r.uploadStart(ctx, fi.Path)
		if ok && started.Before(cutoff) {
			old = append(old, fi.Path)
		}
		return driver.ErrSkipDir
	})
	if err != nil && !isNotFound(err) {
		return res, fmt.Errorf("storage: purge: listing uploads: %w", err)
	}
	for _, dir := range old {
		r.log.Info("purging upload", "path", dir, "dry_run", opts.DryRun)
		if !opts.DryRun {
			if err := deleteIfExists(ctx, r.driver, dir); err != nil {
				return res, err
			}
		}
		res.Uploads++
	}

	ul, ok := r.driver.(driver.UploadLister)
	if !ok {
		return res, nil
	}
	unfinished, err := ul.Unfinished(ctx, repositoriesRoot)
	if errors.Is(err, driver.ErrUnsupported) || isNotFound(err) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("storage: purge: listing unfinished writes: %w", err)
	}
	for p, started := range unfinished {
		if !started.Before(cutoff) {
			continue
		}
		r.log.Info("cancelling unfinished write", "path", p, "started_at", started, "dry_run", opts.DryRun)
		if !opts.DryRun {
			fw, err := r.driver.Writer(ctx, p, true)
			if isNotFound(err) {
				continue // finished or cancelled since it was listed
			}
			if err != nil {
				return res, fmt.Errorf("storage: purge: %w", err)
			}
			if err := fw.Cancel(ctx); err != nil && !isNotFound(err) {
				return res, fmt.Errorf("storage: purge: %w", err)
			}
		}
		res.Unfinished++
	}
	return res, nil
}

// uploadStart tells when the upload in dir started: its startedat file,
// else (a session that has not closed a request yet, or a torn one) the
// newest file in it. ok is false when nothing tells, as for an upload
// whose only bytes are an unfinished write: those age through the driver.
func (r *Registry) uploadStart(ctx context.Context, dir string) (time.Time, bool) {
	b, err := driver.GetContent(ctx, r.driver, dir+"/startedat", 64)
	if err == nil {
		if t, perr := time.Parse(time.RFC3339, strings.TrimSpace(string(b))); perr == nil {
			return t, true
		}
	}
	var newest time.Time
	_ = driver.Walk(ctx, r.driver, dir, func(fi driver.FileInfo) error {
		if !fi.IsDir && fi.ModTime.After(newest) {
			newest = fi.ModTime
		}
		return nil
	})
	return newest, !newest.IsZero()
}
