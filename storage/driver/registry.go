package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Params is a driver's configuration section as decoded from YAML (and
// REGISTRY_STORAGE_<DRIVER>_* overrides). Decode it with DecodeParams.
type Params map[string]any

// Factory builds a driver from its configuration section.
type Factory func(ctx context.Context, params Params) (Driver, error)

// Checker checks a configuration section as the driver's Factory would,
// without touching anything: no directory created, no network, no
// credentials looked up. `berth config check` runs it.
type Checker func(params Params) error

var (
	factoriesMu sync.RWMutex
	factories   = map[string]Factory{}
	checkers    = map[string]Checker{}
)

// RegisterCheck makes the named driver's section checkable without opening
// the driver. Drivers call it from init, beside Register.
func RegisterCheck(name string, c Checker) {
	factoriesMu.Lock()
	defer factoriesMu.Unlock()
	if _, dup := checkers[name]; dup {
		panic("driver: RegisterCheck called twice for " + name)
	}
	checkers[name] = c
}

// ErrNoChecker is returned by Check for a driver that registered no
// Checker: its section can only be checked by opening it.
var ErrNoChecker = errors.New("storage driver cannot check its parameters without opening")

// Check checks the named driver's section without opening the driver.
// Errors are those Open would give: *ParamError values inside an
// *OpenError, or ErrUnknownDriver.
func Check(name string, params Params) error {
	factoriesMu.RLock()
	_, known := factories[name]
	c, ok := checkers[name]
	factoriesMu.RUnlock()
	switch {
	case !known:
		return fmt.Errorf("%w %q (known: %v)", ErrUnknownDriver, name, Registered())
	case !ok:
		return fmt.Errorf("%w: %s", ErrNoChecker, name)
	}
	if err := c(params); err != nil {
		return &OpenError{Driver: name, Err: err}
	}
	return nil
}

// Register makes a driver available by name. Drivers call it from init; it
// is the one package-level registry the program has.
func Register(name string, f Factory) {
	factoriesMu.Lock()
	defer factoriesMu.Unlock()
	if _, dup := factories[name]; dup {
		panic("driver: Register called twice for " + name)
	}
	factories[name] = f
}

// Registered returns the names of the registered drivers, sorted.
func Registered() []string {
	factoriesMu.RLock()
	defer factoriesMu.RUnlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ErrUnknownDriver is returned by Open for a name nobody registered.
var ErrUnknownDriver = errors.New("unknown storage driver")

// Open builds the named driver and wraps it with path validation and error
// tagging (see Wrap).
func Open(ctx context.Context, name string, params Params) (Driver, error) {
	factoriesMu.RLock()
	f, ok := factories[name]
	factoriesMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownDriver, name, Registered())
	}
	d, err := f(ctx, params)
	if err != nil {
		return nil, &OpenError{Driver: name, Err: err}
	}
	return Wrap(d), nil
}

// OpenError is a driver that would not open: a bad key in its section (the
// *ParamError values inside Err) or a backend it could not set up.
type OpenError struct {
	Driver string
	Err    error
}

// Error names each bad key by its full path, "storage.s3.chunksize: …".
func (e *OpenError) Error() string {
	pes := ParamErrors(e.Err)
	if len(pes) == 0 {
		return "storage." + e.Driver + ": " + e.Err.Error()
	}
	lines := make([]string, len(pes))
	for i, pe := range pes {
		lines[i] = "storage." + e.Driver + "." + pe.Error()
	}
	return strings.Join(lines, "\n")
}

func (e *OpenError) Unwrap() error { return e.Err }

// ParamErrors collects every *ParamError in err's tree, in order.
func ParamErrors(err error) []*ParamError {
	var out []*ParamError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *ParamError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, c := range e.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
