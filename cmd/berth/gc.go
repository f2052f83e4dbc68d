package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/berth-registry/berth/storage"
)

const gcUsage = "usage: berth garbage-collect CONFIG [--dry-run] [--delete-untagged] [--online]"

// errNotReadOnly is the refusal to collect (other than a dry run) under a
// registry that may be taking pushes.
var errNotReadOnly = errors.New("garbage-collect: refusing to run: storage.maintenance.readonly.enabled is not true in the configuration, " +
	"so a push may be in progress and lose blobs it is about to reference; put the registry in read-only mode " +
	"(REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true) or pass --online")

// garbageCollect is Distribution's verb: mark every blob a manifest
// references, sweep the rest.
func garbageCollect(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs := flag.NewFlagSet("garbage-collect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "print what would be deleted and delete nothing")
	fs.BoolVar(dryRun, "m", false, "short for --dry-run")
	untagged := fs.Bool("delete-untagged", false, "also delete manifests no tag keeps")
	fs.BoolVar(untagged, "u", false, "short for --delete-untagged")
	online := fs.Bool("online", false, "collect while the registry takes pushes (keeps blobs younger than berth.storage.gc.graceperiod)")
	fs.Usage = func() { fmt.Fprintln(stderr, gcUsage); fs.PrintDefaults() }

	positional, err := parseInterspersed(fs, args)
	if err != nil || len(positional) != 1 {
		return errors.New(gcUsage)
	}
	cfg, err := loadConfig(positional, environ)
	if err != nil {
		return err
	}
	live := !cfg.Storage.Maintenance.ReadOnly.Enabled
	switch {
	case live && *dryRun:
		// A dry run deletes nothing, so it may run beside a registry
		// taking pushes, as Distribution's docs run it; its list is only
		// as true as the moment it was read.
		fmt.Fprintln(stderr, "garbage-collect: dry run on a registry that is not read-only: it may change while this runs, so the list below may already be out of date; nothing is deleted")
	case live && !*online:
		return errNotReadOnly
	}
	log := newLogger(stderr, cfg.Log)
	reg, closeStorage, err := openStorage(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeStorage()
	verb := "deleted"
	if *dryRun {
		verb = "would delete"
	}
	res, err := reg.GarbageCollect(ctx, storage.GCOptions{
		DryRun:         *dryRun,
		DeleteUntagged: *untagged,
		Online:         *online,
		GracePeriod:    cfg.Berth.Storage.GC.GracePeriod,
		Report: func(it storage.GCItem) {
			if it.Kind == "manifest" {
				fmt.Fprintf(stdout, "%s manifest %s@%s (%d bytes)\n", verb, it.Repository, it.Digest, it.Size)
				return
			}
			fmt.Fprintf(stdout, "%s blob %s (%d bytes)\n", verb, it.Digest, it.Size)
		},
	})
	if err != nil {
		return fmt.Errorf("garbage-collect: %w", err)
	}
	freed := "freed"
	if *dryRun {
		freed = "would free"
	}
	fmt.Fprintf(stdout, "%s %d manifests and %d blobs, %s %d bytes\n", verb, res.Manifests, res.Blobs, freed, res.BytesFreed)
	return nil
}
