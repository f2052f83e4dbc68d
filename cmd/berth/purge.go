package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/storage"
)

// purgeFirstDelay is how long after start the first purge runs: soon, so
// a registry restarted daily still purges, but not while it is starting.
const purgeFirstDelay = time.Minute

// startUploadPurger removes abandoned uploads in the background, as
// storage.maintenance.uploadpurging asks, until ctx ends. It returns at
// once; a read-only registry does not purge (nothing may write).
func startUploadPurger(ctx context.Context, cfg *config.Config, reg *storage.Registry, log *slog.Logger) {
	up := cfg.Storage.Maintenance.UploadPurging
	if !up.Enabled || cfg.Storage.Maintenance.ReadOnly.Enabled {
		return
	}
	go runUploadPurger(ctx, reg, log, up, purgeFirstDelay)
}

func runUploadPurger(ctx context.Context, reg *storage.Registry, log *slog.Logger, up config.UploadPurging, first time.Duration) {
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		res, err := reg.PurgeUploads(ctx, storage.PurgeOptions{Age: up.Age, DryRun: up.DryRun, Every: up.Interval})
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("upload purge failed", "err", err)
		case err == nil && res.Skipped:
			log.Info("upload purge skipped: another instance purged recently")
		case err == nil:
			log.Info("upload purge done", "uploads", res.Uploads, "unfinished_writes", res.Unfinished, "dry_run", up.DryRun)
		}
		timer.Reset(up.Interval)
	}
}
