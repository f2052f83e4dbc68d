package swift

import (
	"errors"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/partbuf/partbuftest"
)

// TestWriterGivesItsBufferBackOnceHoweverItEnds ends writers every way,
// failed puts included, and checks that each gave its buffer back to the
// pool exactly once and did not touch it after.
func TestWriterGivesItsBufferBackOnceHoweverItEnds(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	write := func(t *testing.T, w driver.FileWriter, n int) {
		t.Helper()
		if _, err := w.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		fail bool // the container goes after Writer, so every put fails
		run  func(t *testing.T, w driver.FileWriter) error
	}{
		{"CloseThenCancel", false, func(t *testing.T, w driver.FileWriter) error {
			write(t, w, 1<<20+10)
			if err := w.Close(); err != nil {
				return err
			}
			return w.Cancel(ctx)
		}},
		{"CommitSegments", false, func(t *testing.T, w driver.FileWriter) error {
			write(t, w, 1<<20+10)
			return w.Commit(ctx)
		}},
		{"CommitOnePut", false, func(t *testing.T, w driver.FileWriter) error {
			write(t, w, 10)
			return w.Commit(ctx)
		}},
		{"Cancel", false, func(t *testing.T, w driver.FileWriter) error {
			write(t, w, 10)
			return w.Cancel(ctx)
		}},
		{"FailedSegmentThenClose", true, func(t *testing.T, w driver.FileWriter) error {
			if _, err := w.Write(make([]byte, 1<<20+10)); err == nil {
				return errors.New("Write put a segment in a deleted container")
			}
			if err := w.Close(); err == nil {
				return errors.New("Close of a failed writer succeeded")
			}
			return nil
		}},
		{"FailedCommit", true, func(t *testing.T, w driver.FileWriter) error {
			write(t, w, 10)
			if err := w.Commit(ctx); err == nil {
				return errors.New("Commit into a deleted container succeeded")
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cont := f.container(t)
			d := f.driver(t, cont, driver.Params{"chunksize": 1 << 20})
			fw, err := d.Writer(ctx, "/u/data", false)
			if err != nil {
				t.Fatal(err)
			}
			w := fw.(*writer)
			buf := &w.buf[:1][0]
			if tc.fail {
				if err := d.conn.ContainerDelete(ctx, cont); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.run(t, w); err != nil {
				t.Fatal(err)
			}
			partbuftest.CheckGivenBack(ctx, t, d.bufs, buf, func() bool { return w.buf != nil }, w)
		})
	}
}
