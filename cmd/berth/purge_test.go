package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver/filesystem"
)

// TestUploadPurgerRunsEveryInterval drives the purger's loop itself: it
// purges again after each interval (not once), honours dryrun, and stops
// with its context.
func TestUploadPurgerRunsEveryInterval(t *testing.T) {
	const purgeAge = 200 * time.Millisecond
	for _, dryRun := range []bool{false, true} {
		t.Run(map[bool]string{false: "purge", true: "dryrun"}[dryRun], func(t *testing.T) {
			drv, err := filesystem.New(filesystem.Params{RootDirectory: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			reg := storage.New(drv, storage.Options{}, nil)
			repo := reg.Repository("app")
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				up := config.UploadPurging{Enabled: true, Age: purgeAge, Interval: 20 * time.Millisecond, DryRun: dryRun}
				runUploadPurger(ctx, reg, log, up, 0)
			}()

			// An upload abandoned after each run is purged by a later one.
			for round := range 3 {
				u, err := repo.NewUpload(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := u.Write([]byte("abandoned")); err != nil {
					t.Fatal(err)
				}
				if err := u.Close(ctx); err != nil {
					t.Fatal(err)
				}
				// Only runs that start once the upload is older than the
				// age may purge it; an age shorter than creating an upload
				// would let a run remove it while NewUpload still writes.
				time.Sleep(purgeAge)
				runs := strings.Count(logs.String(), "upload purge done")
				deadline := time.Now().Add(10 * time.Second)
				for strings.Count(logs.String(), "upload purge done") < runs+2 {
					if time.Now().After(deadline) {
						t.Fatalf("round %d: no purge ran twice within 10s; log:\n%s", round, logs.String())
					}
					time.Sleep(5 * time.Millisecond)
				}
				_, err = repo.ResumeUpload(ctx, u.ID())
				if dryRun && err != nil {
					t.Fatalf("round %d: dry run removed the upload: %v", round, err)
				}
				if !dryRun && !errors.Is(err, storage.ErrUploadUnknown) {
					t.Fatalf("round %d: abandoned upload: err = %v, want it purged", round, err)
				}
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("purger still running after its context ended")
			}
		})
	}
}
