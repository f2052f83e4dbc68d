package drivertest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

func (s *suite) concurrencyTests() map[string]func(*testing.T) {
	return map[string]func(*testing.T){
		"WritersToDistinctPaths":         s.testConcurrentWriters,
		"WritesAndDeletesInOneDirectory": s.testConcurrentChurn,
		"Readers":                        s.testConcurrentReaders,
		"CreatesOfOnePath":               s.testConcurrentCreates,
	}
}

// testConcurrentCreates races Creates of one path from separate driver
// instances: leases rely on exactly one of them winning, on the others
// being told ErrExist, and on the file holding the winner's bytes whole.
func (s *suite) testConcurrentCreates(t *testing.T) {
	if _, ok := unwrap(s.driver(t)).(driver.Creator); !ok {
		t.Fatal("the driver does not implement driver.Creator: leases (upload sessions, gc) need it")
	}
	const n = 8
	path := "/cc/lease/00000001"
	for round := range 3 {
		p := fmt.Sprintf("%s-%d", path, round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := []int{}
		for i := range n {
			wg.Go(func() {
				err := driver.Create(t.Context(), s.driver(t), p, content(i))
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, i)
					mu.Unlock()
				case !errors.Is(err, driver.ErrExist):
					t.Errorf("Create %d: %v, want nil or ErrExist", i, err)
				}
			})
		}
		wg.Wait()
		got := get(t, s.driver(t), p)
		if !driver.AtomicCreate(s.driver(t)) {
			// A backend without an atomic create (Swift) may let
			// overlapping creates both win; one of them must, and the
			// file holds one winner's bytes whole.
			if len(winners) == 0 || !slices.ContainsFunc(winners, func(i int) bool { return got == string(content(i)) }) {
				t.Fatalf("round %d: winners %v, and the file holds %d bytes of none of them", round, winners, len(got))
			}
		} else if len(winners) != 1 {
			t.Fatalf("round %d: %d Creates of one path won (%v), want exactly 1", round, len(winners), winners)
		} else if got != string(content(winners[0])) {
			t.Fatalf("round %d: the file holds %d bytes, not the winner's", round, len(got))
		}
		if err := driver.Create(t.Context(), s.driver(t), p, []byte("late")); !errors.Is(err, driver.ErrExist) {
			t.Fatalf("Create over an existing file: %v, want ErrExist", err)
		}
	}
}

func content(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("writer %d;", i)), 1000+i) }

func (s *suite) testConcurrentWriters(t *testing.T) {
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := s.driver(t) // one instance per writer, one store
			ctx := t.Context()
			path := fmt.Sprintf("/cw/shared/f%d", i)
			if i%2 == 1 {
				path = fmt.Sprintf("/cw/own%d/deep/f", i)
			}
			w, err := d.Writer(ctx, path, false)
			if err != nil {
				t.Error(err)
				return
			}
			data := content(i)
			for len(data) > 0 {
				k := min(len(data), 4096)
				if _, err := w.Write(data[:k]); err != nil {
					t.Error(err)
					return
				}
				data = data[k:]
			}
			if err := w.Commit(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	d := s.driver(t)
	for i := range n {
		path := fmt.Sprintf("/cw/shared/f%d", i)
		if i%2 == 1 {
			path = fmt.Sprintf("/cw/own%d/deep/f", i)
		}
		if got := get(t, d, path); got != string(content(i)) {
			t.Errorf("%s holds %d bytes, not what its writer wrote", path, len(got))
		}
	}
}

// testConcurrentChurn writes and deletes files in one directory at once, so
// that one goroutine empties (and prunes) the directory while another is
// about to write into it.
func (s *suite) testConcurrentChurn(t *testing.T) {
	const n, rounds = 8, 20
	d := s.driver(t)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx := t.Context()
			for r := range rounds {
				path := fmt.Sprintf("/churn/dir/sub/f%d", i)
				want := fmt.Sprintf("%d/%d", i, r)
				var err error
				if r%2 == 0 {
					err = driver.PutContent(ctx, d, path, []byte(want))
				} else {
					err = writeOnce(d, t, path, want)
				}
				if err != nil {
					t.Errorf("write %s round %d: %v", path, r, err)
					return
				}
				got, err := driver.GetContent(ctx, d, path, 100)
				if err != nil || string(got) != want {
					t.Errorf("read %s round %d = %q, %v; want %q", path, r, got, err, want)
					return
				}
				if err := d.Delete(ctx, path); err != nil {
					t.Errorf("delete %s round %d: %v", path, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	wantNotFound(t, d, "/churn")
}

func writeOnce(d driver.Driver, t *testing.T, path, data string) error {
	w, err := d.Writer(t.Context(), path, false)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(data)); err != nil {
		return err
	}
	return w.Commit(t.Context())
}

func (s *suite) testConcurrentReaders(t *testing.T) {
	d := s.driver(t)
	data := content(4000)
	put(t, d, "/cr/file", string(data))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			off := int64(i * 1000)
			got, err := readAll(t.Context(), s.driver(t), "/cr/file", off)
			if err != nil || !bytes.Equal(got, data[off:]) {
				t.Errorf("reader %d: %d bytes, %v; want the file from %d", i, len(got), err, off)
			}
		})
	}
	wg.Wait()
}
