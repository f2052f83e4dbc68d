package driver_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/drivertest"
	"github.com/berth-registry/berth/storage/driver/inmemory"
)

// recorder remembers every operation it hears of, and its result.
type recorder struct {
	mu  sync.Mutex
	ops []string
	err map[string]error
}

func (r *recorder) Begin(ctx context.Context, drv, op, path string) (context.Context, func(error)) {
	return ctx, func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.ops = append(r.ops, drv+" "+op+" "+path)
		if r.err == nil {
			r.err = map[string]error{}
		}
		r.err[op] = err
	}
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ops...)
}

// TestInstrumentedDriverConforms runs the driver suite through the
// instrumentation, so it changes nothing a driver does.
func TestInstrumentedDriverConforms(t *testing.T) {
	var mu sync.Mutex
	stores := map[*testing.T]driver.Driver{}
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		mu.Lock()
		defer mu.Unlock()
		if stores[t] == nil {
			stores[t] = driver.Instrument(inmemory.New(), &recorder{})
			t.Cleanup(func() {
				mu.Lock()
				delete(stores, t)
				mu.Unlock()
			})
		}
		return stores[t]
	})
}

func TestInstrumentReportsOperationsInsideTheWrapper(t *testing.T) {
	rec := &recorder{}
	d := driver.Instrument(driver.Wrap(inmemory.New()), rec)
	if _, ok := d.(interface{ Unwrap() driver.Driver }); !ok {
		t.Fatal("instrumenting a wrapped driver did not keep the wrapper outside")
	}
	ctx := context.Background()
	if err := driver.PutContent(ctx, d, "/a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, "/a/missing"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("stat of a missing file: %v", err)
	}
	var pe *driver.PathError
	if _, err := d.Stat(ctx, "/a/missing"); !errors.As(err, &pe) || pe.Op != "stat" {
		t.Fatalf("errors no longer tagged by the wrapper: %v", err)
	}
	if _, err := d.Stat(ctx, "/../etc"); !errors.Is(err, driver.ErrInvalidPath) {
		t.Fatalf("invalid path: %v", err)
	}
	w, err := d.Writer(ctx, "/c", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	want := []string{
		"inmemory putcontent /a/b",
		"inmemory stat /a/missing",
		"inmemory stat /a/missing",
		"inmemory writer /c",
		"inmemory commit /c",
	}
	got := rec.seen()
	if len(got) != len(want) {
		t.Fatalf("heard %q, want %q (an invalid path must not reach the observer)", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("op %d = %q, want %q", i, got[i], want[i])
		}
	}
	if !errors.Is(rec.err["stat"], driver.ErrNotFound) {
		t.Errorf("observer heard stat end with %v, want not found", rec.err["stat"])
	}
}

func TestObserversCallsEachInOrder(t *testing.T) {
	var order []string
	mk := func(name string) driver.Observer {
		return observerFunc(func(ctx context.Context, _, _, _ string) (context.Context, func(error)) {
			order = append(order, "begin "+name)
			return ctx, func(error) { order = append(order, "end "+name) }
		})
	}
	d := driver.Instrument(inmemory.New(), driver.Observers(mk("a"), nil, mk("b")))
	_, _ = d.Stat(context.Background(), "/x")
	want := "begin a,begin b,end b,end a"
	if got := strings.Join(order, ","); got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
}

type observerFunc func(ctx context.Context, drv, op, path string) (context.Context, func(error))

func (f observerFunc) Begin(ctx context.Context, drv, op, path string) (context.Context, func(error)) {
	return f(ctx, drv, op, path)
}
