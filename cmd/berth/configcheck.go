package main

import (
	"context"
	"fmt"
	"io"
)

// configCheck validates a configuration, including the storage driver's own
// section, and prints the effective configuration with secrets redacted.
func configCheck(args []string, stdout io.Writer, environ []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: berth config check CONFIG")
	}
	cfg, err := loadConfig(args, environ)
	if err != nil {
		return err
	}
	if err := checkDriverParams(context.Background(), cfg); err != nil {
		return err
	}
	out, err := cfg.Redacted().YAML()
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "# warning: %s\n", w)
	}
	_, err = stdout.Write(out)
	return err
}
