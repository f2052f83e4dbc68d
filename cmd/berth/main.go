// Command berth is the Berth registry server. It wires the program together
// from its configuration: plain constructors, no globals.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/berth-registry/berth/storage/driver"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage: berth <command> [arguments]

commands:
  serve [CONFIG]              run the registry (no CONFIG: the embedded default)
  garbage-collect CONFIG      remove blobs no manifest references
  config check [--json] [--connect] CONFIG
                              validate CONFIG as serve would and print it, secrets redacted
  version                     print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr, environ)
	case "garbage-collect":
		err = garbageCollect(ctx, args[1:], stdout, stderr, environ)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		err = configCheck(ctx, args[2:], stdout, stderr, environ)
	case "version", "--version", "-v":
		// The drivers tell a build made with OMIT from the release.
		fmt.Fprintf(stdout, "berth %s\nstorage drivers: %s\n", version, strings.Join(driver.Registered(), ", "))
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "berth: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return 1
	}
	return 0
}
