package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/berth-registry/berth/storage/driver"
)

const configCheckUsage = "usage: berth config check [--json] [--connect] CONFIG"

// configCheck validates a configuration as serve would at start (the
// same prepare) and prints the effective configuration with every secret
// redacted. It creates nothing and needs no network; --connect also opens
// the storage driver, which may create the filesystem root or the Azure
// container and contacts the backend, and asks the shared cache's Redis.
func configCheck(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the warnings and the configuration as one JSON object")
	connect := fs.Bool("connect", false, "also open the storage driver (may create its root or container; needs the network for object stores) and ask Redis when it is the shared cache")
	fs.Usage = func() { fmt.Fprintln(stderr, configCheckUsage); fs.PrintDefaults() }
	positional, err := parseInterspersed(fs, args)
	if err != nil || len(positional) != 1 {
		return errors.New(configCheckUsage)
	}
	cfg, err := loadConfig(positional, environ)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log)
	if _, err := prepare(cfg, log); err != nil {
		return err
	}
	if *connect {
		name, params := cfg.Storage.Driver()
		if _, err := driver.Open(ctx, name, params); err != nil {
			return placeDriverError(cfg, name, err)
		}
		// Serve refuses a shared cache that does not answer at start.
		shared, err := openSharedCache(ctx, cfg, log)
		if err != nil {
			return err
		}
		if shared != nil {
			shared.Close()
		}
	}
	if *asJSON {
		m, err := cfg.RedactedMap()
		if err != nil {
			return err
		}
		warnings := cfg.Warnings
		if warnings == nil {
			warnings = []string{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Warnings []string       `json:"warnings"`
			NoEffect []string       `json:"noeffect"`
			Config   map[string]any `json:"config"`
		}{warnings, cfg.NoEffect(), m})
	}
	out, err := cfg.RedactedYAML()
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "# warning: %s\n", w)
	}
	_, err = stdout.Write(out)
	return err
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, as Distribution's runbooks write them.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}
